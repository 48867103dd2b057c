#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_cache::fuzzing::fuzz_cache_inputs(data));
