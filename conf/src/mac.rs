//! The text form of a MAC address, `02:00:00:00:01:02`: the one parser ([`parse_mac`]) and
//! the one formatter ([`mac_text`]) of the configuration, `dpvsctl`, `dpip` and `dpvs-gen`.

/// A text that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a MAC address like \"02:00:00:00:01:02\", got \"{text}\"")]
pub struct ParseMacError {
    /// The rejected text.
    pub text: String,
}

/// `02:00:00:00:01:02`: six colon-separated bytes of exactly two hexadecimal digits each
/// (either case).
///
/// # Errors
/// [`ParseMacError`] for anything else: fewer or more than six parts, a part of another
/// length, a character that is not a hexadecimal digit.
pub fn parse_mac(text: &str) -> Result<[u8; 6], ParseMacError> {
    let bad = || ParseMacError { text: text.to_owned() };
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        // `from_str_radix` alone would take a sign (`+f`).
        let p = parts.next().filter(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit())).ok_or_else(bad)?;
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// `02:00:00:00:01:02`: lower case, two digits a byte.
pub fn mac_text(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// {text, the address it is, or `None` for a refusal}.
    const FIXTURES: &[(&str, Option<[u8; 6]>)] = &[
        ("02:00:00:00:01:02", Some([0x02, 0x00, 0x00, 0x00, 0x01, 0x02])),
        ("ff:ff:ff:ff:ff:ff", Some([0xff; 6])),
        ("00:00:00:00:00:00", Some([0; 6])),
        ("0A:1b:C2:d3:E4:F5", Some([0x0a, 0x1b, 0xc2, 0xd3, 0xe4, 0xf5])),
        // Too short.
        ("02:00:00:00:01", None),
        ("", None),
        // Too long.
        ("02:00:00:00:01:02:03", None),
        ("02:00:00:00:01:02:", None),
        // Not hexadecimal.
        ("02:00:00:00:01:0g", None),
        ("+2:00:00:00:01:02", None),
        ("02:00:00:00:01: 2", None),
        // Empty parts, parts of one or three digits.
        ("02::00:00:01:02", None),
        (":::::", None),
        ("2:0:0:0:1:2", None),
        ("002:00:00:00:01:02", None),
        // Another separator.
        ("02-00-00-00-01-02", None),
        ("0200.0000.0102", None),
    ];

    #[test]
    fn fixtures() {
        for &(text, want) in FIXTURES {
            let got = parse_mac(text);
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{text:?}");
            if let Err(e) = got {
                assert_eq!(e.to_string(), format!("expected a MAC address like \"02:00:00:00:01:02\", got \"{text}\""));
            }
        }
    }

    #[test]
    fn text_is_lower_case_and_parses_back() {
        let m = [0x0a, 0x1b, 0xc2, 0xd3, 0xe4, 0xf5];
        assert_eq!(mac_text(m), "0a:1b:c2:d3:e4:f5");
        for &(_, want) in FIXTURES {
            if let Some(m) = want {
                assert_eq!(parse_mac(&mac_text(m)), Ok(m));
            }
        }
    }
}
