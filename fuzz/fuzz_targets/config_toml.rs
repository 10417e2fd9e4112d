//! `TrainConfig::from_toml` then `validate` on arbitrary text, as
//! `downhill train --config FILE` reads it. No panic; one-line errors; a
//! config that validates also serialises, reads back equal and validates
//! again, and gives load options.
#![no_main]

use downhill_fuzz::check_error;
use downhill_train::TrainConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match TrainConfig::from_toml(text) {
        Ok(c) => c,
        Err(e) => return check_error(&e),
    };
    if let Err(e) = cfg.validate() {
        return check_error(&e);
    }
    let again = TrainConfig::from_toml(&cfg.to_toml()).expect("a valid config reads back");
    assert_eq!(again, cfg);
    again
        .validate()
        .expect("a config that validated once validates again");
    cfg.load_options()
        .expect("a valid config gives load options");
    cfg.optimizer_spec()
        .expect("a valid config has an optimizer spec");
});
