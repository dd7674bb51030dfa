//! Mailbox requests from arbitrary bytes: decoding never panics; a request that decodes encodes
//! back to bytes that decode to it; a change it carries, made against the embedded default
//! configuration, either is refused or gives a configuration that passes the file's rules (the
//! primary publishes nothing else).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbox::proto::{Request, Response};

/// The embedded default configuration and its runtime part, read once.
fn embedded() -> &'static (conf::Config, conf::Runtime) {
    static CFG: std::sync::OnceLock<(conf::Config, conf::Runtime)> = std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        let cfg = conf::Config::embedded_default();
        let rt = cfg.runtime();
        (cfg, rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Response::decode(data);
    let _ = mailbox::proto::decode_changes(data);
    let Ok(request) = Request::decode(data) else { return };
    assert_eq!(Request::decode(&request.encode()).as_ref(), Ok(&request), "a round trip");
    if let Request::Change(change) = request {
        let (cfg, rt) = embedded();
        if let Ok(next) = primary::control::apply(cfg, rt, &change) {
            cfg.check_runtime(&next).expect("a change the primary makes passes the file's rules");
        }
    }
});
