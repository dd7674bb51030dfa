//! The configuration file on arbitrary text: never panics; a file it accepts has a runtime part
//! that passes the runtime rules, and dumps (`config dump`'s tables) to a file that reads back
//! to the same runtime.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = conf::Config::from_str(text, "fuzz.toml") else { return };
    let rt = cfg.runtime();
    cfg.check_runtime(&rt).expect("a valid file's runtime passes the runtime rules");
    let tables = cfg.render_runtime(&rt);
    let dumped = conf::replace_runtime_tables(text, &tables).expect("the file's own tables are replaced");
    let again = conf::Config::from_str(&dumped, "dumped.toml").expect("a dump reads back");
    assert_eq!(again.runtime(), rt, "the dump is the same runtime");
});
