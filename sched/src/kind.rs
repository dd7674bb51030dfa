//! Which scheduler a service uses, named as `ipvsadm -s` names it.

use std::fmt;
use std::str::FromStr;

/// A scheduling algorithm and its parameters.
///
/// The text form ([`FromStr`], [`Display`](fmt::Display)) is the bare `ipvsadm` name; the
/// parameters of `conhash` and `mh` are configured separately (DPVS takes them as service flags:
/// `--hash-target`, `mh-port`), so parsing gives their defaults and printing omits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// `rr`: round robin over the backends that can take new connections.
    Rr,
    /// `wrr`: LVS interleaved weighted round robin.
    Wrr,
    /// `wlc`: weighted least connections.
    Wlc,
    /// `lc`: least connections (kernel LVS; DPVS does not register it).
    Lc,
    /// `conhash`: consistent hashing ring with weighted virtual nodes.
    Conhash(ConhashBy),
    /// `fo`: weighted failover, the highest-weight backend takes everything.
    Fo,
    /// `mh`: Maglev hashing.
    Mh(MhParams),
}

/// What `conhash` hashes (DPVS `--hash-target`; DPVS also has `qid`, the QUIC connection id,
/// which needs the packet and is not modelled here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum ConhashBy {
    /// The source address (DPVS `sip`, the default): a client sticks to one backend.
    #[default]
    SourceIp,
    /// Source and destination address and port and the protocol: each flow is placed on its own.
    FiveTuple,
}

/// Parameters of the Maglev scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MhParams {
    /// Lookup table size `M`: a prime larger than the number of backends. The paper recommends
    /// `M > 100 * N` to keep the imbalance under 1%. Default 65537 (Katran's ring size).
    pub table_size: u32,
    /// Hash the source port along with the source address (DPVS/keepalived `mh-port`), spreading
    /// one client's connections over several backends.
    pub hash_port: bool,
}

impl MhParams {
    /// The default table size, 65537 (2^16 + 1, prime).
    pub const DEFAULT_TABLE_SIZE: u32 = 65537;
}

impl Default for MhParams {
    fn default() -> Self {
        Self { table_size: Self::DEFAULT_TABLE_SIZE, hash_port: false }
    }
}

impl Kind {
    /// Every valid name, in the order error messages list them.
    pub const NAMES: [&'static str; 7] = ["rr", "wrr", "wlc", "lc", "conhash", "fo", "mh"];

    /// The `ipvsadm` name.
    pub const fn name(&self) -> &'static str {
        match self {
            Kind::Rr => "rr",
            Kind::Wrr => "wrr",
            Kind::Wlc => "wlc",
            Kind::Lc => "lc",
            Kind::Conhash(_) => "conhash",
            Kind::Fo => "fo",
            Kind::Mh(_) => "mh",
        }
    }

    /// Whether the scheduler places backends by identity (`conhash`, `mh`), so that building it
    /// needs one identity key per backend.
    pub const fn needs_identity(&self) -> bool {
        matches!(self, Kind::Conhash(_) | Kind::Mh(_))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that is not one of [`Kind::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler `{value}`: expected one of rr, wrr, wlc, lc, conhash, fo, mh")]
pub struct ParseKindError {
    /// The rejected text.
    pub value: String,
}

impl FromStr for Kind {
    type Err = ParseKindError;

    /// Parses an `ipvsadm` name (exact, lowercase). `conhash` gets [`ConhashBy::SourceIp`] and
    /// `mh` gets [`MhParams::default`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "rr" => Kind::Rr,
            "wrr" => Kind::Wrr,
            "wlc" => Kind::Wlc,
            "lc" => Kind::Lc,
            "conhash" => Kind::Conhash(ConhashBy::default()),
            "fo" => Kind::Fo,
            "mh" => Kind::Mh(MhParams::default()),
            _ => return Err(ParseKindError { value: s.to_owned() }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for name in Kind::NAMES {
            let kind: Kind = name.parse().unwrap();
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.name(), name);
        }
    }

    #[test]
    fn parse_gives_dpvs_defaults() {
        assert_eq!("conhash".parse(), Ok(Kind::Conhash(ConhashBy::SourceIp)));
        assert_eq!("mh".parse(), Ok(Kind::Mh(MhParams { table_size: 65537, hash_port: false })));
        assert!(Kind::Mh(MhParams::default()).needs_identity());
        assert!(Kind::Conhash(ConhashBy::FiveTuple).needs_identity());
        assert!(!Kind::Wlc.needs_identity());
    }

    #[test]
    fn parse_error_names_the_value_and_the_valid_ones() {
        for bad in ["", "RR", "sh", "lblc", "wrr ", "maglev"] {
            let err = bad.parse::<Kind>().unwrap_err();
            assert_eq!(err.value, bad);
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
            for name in Kind::NAMES {
                assert!(msg.contains(name), "{msg} lacks {name}");
            }
        }
    }
}
