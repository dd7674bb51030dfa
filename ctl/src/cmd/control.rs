//! Commands that go to the primary through the mailbox.

use std::time::Duration;

use mailbox::proto::{Request, Response};
use mailbox::Client;
use shm_layout::Shm;

use crate::exit_codes;

/// Sends `request` and waits for the answer. Returns the text to print and the exit code.
pub fn call(shm: &Shm, request: &Request, timeout: Duration, json: bool) -> (String, i32) {
    let reply = match Client::new(&shm.layout().mailbox).call(&request.encode(), timeout) {
        Ok(r) => r,
        Err(e) => return (format!("dpvsctl: {e}\n"), exit_codes::FAILURE),
    };
    let response = match Response::decode(&reply) {
        Ok(r) => r,
        Err(e) => return (format!("dpvsctl: the primary's answer: {e}\n"), exit_codes::FAILURE),
    };
    let code = if matches!(response, Response::Error { .. }) { exit_codes::REFUSED } else { exit_codes::OK };
    let text = if json {
        let mut s = serde_json::to_string_pretty(&response).unwrap_or_default();
        s.push('\n');
        s
    } else {
        match &response {
            Response::WorkerRestarted { slot, old_pid, new_pid, took_us, gap_us } => format!(
                "worker {slot} restarted: pid {old_pid} -> {new_pid}, handed over after {:.1} ms, polling gap {gap_us} us\n",
                *took_us as f64 / 1000.0
            ),
            Response::Applied { generation, took_us } => {
                format!("applied: generation {generation}, every worker forwarding with it after {:.1} ms\n", *took_us as f64 / 1000.0)
            }
            Response::Zeroed { took_us } => {
                format!("zeroed: every worker's counters after {:.1} ms\n", *took_us as f64 / 1000.0)
            }
            Response::Error { message } => format!("dpvsctl: {message}\n"),
        }
    };
    (text, code)
}
