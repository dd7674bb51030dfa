//! TCP connection states and timeouts as LVS defines them and DPVS configures them by default.
//!
//! The balancer sees TCP from the middle, so states are guesses from the flags it forwards:
//! the event is RST, else SYN, else FIN, else ACK (LVS `tcp_state_idx`), and the next state
//! depends on the direction: inbound (client to server), outbound (server to client), or
//! inbound-only for modes where replies bypass the balancer (DR, tunnel).

/// LVS TCP states, in LVS's order (the value is stored in `ConnEntry::state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

const STATES: [State; 11] = [
    State::None,
    State::Established,
    State::SynSent,
    State::SynRecv,
    State::FinWait,
    State::TimeWait,
    State::Close,
    State::CloseWait,
    State::LastAck,
    State::Listen,
    State::SynAck,
];

impl State {
    /// Decodes a stored value (unknown values read as Close, the safest: short timeout).
    pub fn from_u8(v: u8) -> State {
        STATES.get(usize::from(v)).copied().unwrap_or(State::Close)
    }

    /// Name as ipvsadm prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::None => "NONE",
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait => "FIN_WAIT",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::SynAck => "SYNACK",
        }
    }

    /// DPVS's default timeout for the state, seconds.
    pub fn default_timeout_s(self) -> u32 {
        match self {
            State::None => 2,
            State::Established => 90,
            State::SynSent => 3,
            State::SynRecv => 30,
            State::FinWait => 7,
            State::TimeWait => 7,
            State::Close => 3,
            State::CloseWait => 7,
            State::LastAck => 7,
            State::Listen => 120,
            State::SynAck => 30,
        }
    }
}

/// Timeout of a UDP entry, seconds (DPVS default).
pub const UDP_TIMEOUT_S: u32 = 300;

/// Which way a segment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client to server.
    In,
    /// Server to client.
    Out,
    /// Client to server, on a connection whose replies do not cross the balancer.
    InOnly,
}

/// The state-changing part of a segment's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Syn,
    Fin,
    Ack,
    Rst,
}

impl Event {
    /// LVS's choice among the flags: RST, then SYN, then FIN, then ACK; `None` for a segment
    /// with none of them (it changes nothing).
    pub fn from_flags(syn: bool, fin: bool, ack: bool, rst: bool) -> Option<Event> {
        if rst {
            Some(Event::Rst)
        } else if syn {
            Some(Event::Syn)
        } else if fin {
            Some(Event::Fin)
        } else if ack {
            Some(Event::Ack)
        } else {
            None
        }
    }
}

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI, None as NO,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// Next states, indexed `[event][current state]`, current states in `State` order:
/// NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK,
/// LISTEN, SYNACK. Events in `Event` order: SYN, FIN, ACK, RST.
type Table = [[State; 11]; 4];

const INBOUND: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];

const OUTBOUND: Table = [
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

const INBOUND_ONLY: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

// The tables are only readable if NO/SA etc. mean what the header says.
const _: () = assert!(NO as u8 == 0 && SA as u8 == 10);

/// The state after a segment with `event` travelling `way` in state `state`.
pub fn next(state: State, way: Way, event: Event) -> State {
    let table = match way {
        Way::In => &INBOUND,
        Way::Out => &OUTBOUND,
        Way::InOnly => &INBOUND_ONLY,
    };
    table[event as usize][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(steps: &[(Way, Event)]) -> Vec<State> {
        let mut s = State::None;
        steps
            .iter()
            .map(|&(w, e)| {
                s = next(s, w, e);
                s
            })
            .collect()
    }

    #[test]
    fn full_nat_handshake_and_client_close() {
        use Event::*;
        use Way::*;
        let states = run(&[(In, Syn), (Out, Syn), (In, Ack), (In, Fin), (Out, Ack), (Out, Fin), (In, Ack)]);
        assert_eq!(states, [SR, SR, ES, CW, CW, TW, TW]);
        assert_eq!(State::TimeWait.default_timeout_s(), 7);
        assert_eq!(State::Established.default_timeout_s(), 90);
    }

    #[test]
    fn server_closes_first() {
        use Event::*;
        use Way::*;
        let states = run(&[(In, Syn), (Out, Syn), (In, Ack), (Out, Fin), (In, Ack), (In, Fin), (Out, Ack)]);
        assert_eq!(states, [SR, SR, ES, FW, FW, TW, TW]);
    }

    #[test]
    fn resets_close_and_a_stray_ack_does_not_establish() {
        assert_eq!(next(ES, Way::In, Event::Rst), CL);
        assert_eq!(next(ES, Way::Out, Event::Rst), CL);
        assert_eq!(next(SR, Way::In, Event::Rst), SR, "a RST from the client during the handshake is ignored");
        assert_eq!(next(NO, Way::In, Event::Ack), CL, "an ACK with no connection is not a connection");
    }

    #[test]
    fn inbound_only_modes_track_the_client_side() {
        use Event::*;
        use Way::*;
        let states = run(&[(InOnly, Syn), (InOnly, Ack), (InOnly, Fin), (InOnly, Ack)]);
        assert_eq!(states, [SR, ES, FW, FW]);
        assert_eq!(next(ES, InOnly, Rst), CL);
    }

    #[test]
    fn event_priority_is_rst_syn_fin_ack() {
        assert_eq!(Event::from_flags(true, true, true, true), Some(Event::Rst));
        assert_eq!(Event::from_flags(true, true, true, false), Some(Event::Syn));
        assert_eq!(Event::from_flags(false, true, true, false), Some(Event::Fin));
        assert_eq!(Event::from_flags(false, false, true, false), Some(Event::Ack));
        assert_eq!(Event::from_flags(false, false, false, false), None);
    }

    #[test]
    fn every_transition_lands_on_a_known_state() {
        for s in STATES {
            for w in [Way::In, Way::Out, Way::InOnly] {
                for e in [Event::Syn, Event::Fin, Event::Ack, Event::Rst] {
                    let n = next(s, w, e);
                    assert_eq!(State::from_u8(n as u8), n);
                }
            }
        }
        assert_eq!(State::from_u8(200), State::Close);
    }
}
