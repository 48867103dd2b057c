#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_http::fuzz_normalize(data));
