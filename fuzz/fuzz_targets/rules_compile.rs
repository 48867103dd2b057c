#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_rules::fuzz_compile(data));
