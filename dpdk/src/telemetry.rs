//! Commands of the application's own in DPDK's telemetry socket (`dpdk-telemetry.py`), next
//! to the libraries' (`/ethdev/list`, `/ethdev/stats,<port>`, ...).

use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::sync::{Mutex, OnceLock};

use dpdk_sys as sys;

use crate::error::Error;

/// One value of an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum TelScalar {
    Str(String),
    Int(i64),
    U64(u64),
}

/// A dictionary entry's value: a scalar, or an array of scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum TelEntry {
    Scalar(TelScalar),
    Array(Vec<TelScalar>),
}

/// What a command answers: a dictionary (at most 256 entries, names of letters, digits, `_`
/// and `/`) or an array (at most 512 values). Strings longer than 127 bytes are cut.
#[derive(Clone, Debug, PartialEq)]
pub enum TelValue {
    Dict(Vec<(String, TelEntry)>),
    Array(Vec<TelScalar>),
}

/// A command's handler: its parameters (the text after the comma, empty if none) to its
/// answer, or an error the client sees as a null answer.
pub type TelHandler = dyn Fn(&str) -> Result<TelValue, String> + Send + Sync;

fn registry() -> &'static Mutex<HashMap<String, Box<TelHandler>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Box<TelHandler>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers `cmd` (for example `/dpvs/workers`) with its one-line `help`, answered by
/// `handler` on the telemetry thread. The EAL must be initialised with telemetry on.
pub fn register_telemetry(cmd: &str, help: &str, handler: Box<TelHandler>) -> Result<(), Error> {
    let bad = || Error::BadName(cmd.to_owned());
    let c_cmd = CString::new(cmd).map_err(|_| bad())?;
    let c_help = CString::new(help).map_err(|_| bad())?;
    registry().lock().unwrap_or_else(|e| e.into_inner()).insert(cmd.to_owned(), handler);
    // DPDK keeps the two strings' pointers: they live as long as the process.
    let (c_cmd, c_help) = (Box::leak(c_cmd.into_boxed_c_str()), Box::leak(c_help.into_boxed_c_str()));
    // SAFETY: both strings are NUL-terminated and never freed; the trampoline is a valid
    // `extern "C"` function of the telemetry callback type for the process's lifetime.
    let rc = unsafe { sys::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(trampoline), c_help.as_ptr()) };
    Error::check("rte_telemetry_register_cmd", rc).map(|_| ())
}

extern "C" fn trampoline(cmd: *const c_char, params: *const c_char, d: *mut sys::rte_tel_data) -> i32 {
    // SAFETY: telemetry passes the registered command's NUL-terminated name, and a
    // NUL-terminated parameter string or NULL, valid for this call.
    let cmd = unsafe { CStr::from_ptr(cmd) }.to_string_lossy().into_owned();
    let params = if params.is_null() {
        String::new()
    } else {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(params) }.to_string_lossy().into_owned()
    };
    let answer = std::panic::catch_unwind(|| {
        let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.get(&cmd).map(|h| h(&params))
    });
    match answer {
        Ok(Some(Ok(value))) => {
            // SAFETY: `d` is the answer's data, valid for this call.
            unsafe { fill(d, &value) };
            0
        }
        _ => -22,
    }
}

fn cstring(s: &str) -> CString {
    let s: String = s.chars().filter(|&c| c != '\0').collect();
    let mut cut = s.len().min(sys::RTE_TEL_MAX_STRING_LEN as usize - 1);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    CString::new(&s[..cut]).unwrap_or_default()
}

/// The type of a scalar array (strings when mixed).
fn array_type(values: &[TelScalar]) -> sys::rte_tel_value_type {
    let first = values.first();
    let same = |f: fn(&TelScalar) -> bool| values.iter().all(f);
    match first {
        Some(TelScalar::Int(_)) if same(|v| matches!(v, TelScalar::Int(_))) => sys::rte_tel_value_type_RTE_TEL_INT_VAL,
        Some(TelScalar::U64(_)) if same(|v| matches!(v, TelScalar::U64(_))) => sys::rte_tel_value_type_RTE_TEL_U64_VAL,
        _ => sys::rte_tel_value_type_RTE_TEL_STRING_VAL,
    }
}

/// # Safety
/// `d` is a valid telemetry data of an array started with [`array_type`] of `values`.
unsafe fn add_array(d: *mut sys::rte_tel_data, values: &[TelScalar]) {
    let ty = array_type(values);
    for v in values.iter().take(sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize) {
        // SAFETY: `d` is valid (caller); the strings live across the call and are copied.
        unsafe {
            match (ty, v) {
                (sys::rte_tel_value_type_RTE_TEL_INT_VAL, TelScalar::Int(i)) => {
                    sys::rte_tel_data_add_array_int(d, (*i).clamp(i32::MIN.into(), i32::MAX.into()) as i32);
                }
                (sys::rte_tel_value_type_RTE_TEL_U64_VAL, TelScalar::U64(u)) => {
                    sys::rte_tel_data_add_array_u64(d, *u);
                }
                (_, v) => {
                    sys::rte_tel_data_add_array_string(d, cstring(&scalar_text(v)).as_ptr());
                }
            }
        }
    }
}

fn scalar_text(v: &TelScalar) -> String {
    match v {
        TelScalar::Str(s) => s.clone(),
        TelScalar::Int(i) => i.to_string(),
        TelScalar::U64(u) => u.to_string(),
    }
}

/// # Safety
/// `d` is the valid, empty answer data of a telemetry callback.
unsafe fn fill(d: *mut sys::rte_tel_data, value: &TelValue) {
    // SAFETY: (the whole body) `d` is valid (caller); containers come from rte_tel_data_alloc and
    // pass to the dictionary (keep = 0: telemetry frees them); strings are copied.
    unsafe {
        match value {
            TelValue::Array(values) => {
                sys::rte_tel_data_start_array(d, array_type(values));
                add_array(d, values);
            }
            TelValue::Dict(entries) => {
                sys::rte_tel_data_start_dict(d);
                for (name, entry) in entries.iter().take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize) {
                    let name = cstring(name);
                    match entry {
                        TelEntry::Scalar(TelScalar::Str(s)) => {
                            sys::rte_tel_data_add_dict_string(d, name.as_ptr(), cstring(s).as_ptr());
                        }
                        TelEntry::Scalar(TelScalar::Int(i)) => {
                            sys::rte_tel_data_add_dict_int(
                                d,
                                name.as_ptr(),
                                (*i).clamp(i32::MIN.into(), i32::MAX.into()) as i32,
                            );
                        }
                        TelEntry::Scalar(TelScalar::U64(u)) => {
                            sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), *u);
                        }
                        TelEntry::Array(values) => {
                            let c = sys::rte_tel_data_alloc();
                            if c.is_null() {
                                continue;
                            }
                            sys::rte_tel_data_start_array(c, array_type(values));
                            add_array(c, values);
                            if sys::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0) != 0 {
                                sys::rte_tel_data_free(c);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_take_one_type_and_strings_are_cut_at_the_limit() {
        assert_eq!(array_type(&[TelScalar::U64(1), TelScalar::U64(2)]), sys::rte_tel_value_type_RTE_TEL_U64_VAL);
        assert_eq!(array_type(&[TelScalar::Int(1)]), sys::rte_tel_value_type_RTE_TEL_INT_VAL);
        assert_eq!(
            array_type(&[TelScalar::U64(1), TelScalar::Str("a".into())]),
            sys::rte_tel_value_type_RTE_TEL_STRING_VAL
        );
        assert_eq!(cstring(&"é".repeat(100)).as_bytes().len(), 126);
        assert_eq!(cstring("a\0b").as_bytes(), b"ab");
    }
}
