#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::downstream::h2::fuzz_h2_request(data));
