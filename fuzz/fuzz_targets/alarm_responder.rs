#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medic_fuzz::alarm_responder(data));
