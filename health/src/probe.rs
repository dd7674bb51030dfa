//! The probes: each sends what its check says to one real server and says whether the answer
//! counts as alive, or why not. All of them end by the check's timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use conf::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most of an HTTP answer read (status line, headers and the start of the body).
const HTTP_READ: usize = 64 * 1024;

/// What a probe needs besides the check.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The address and port probed (the check's port, else the real server's).
    pub to: SocketAddr,
    /// The service's virtual address and port, and protocol name, for a command's environment.
    pub vip: SocketAddr,
    pub protocol: &'static str,
}

/// The ICMP sockets, one per family, opened once.
pub struct Pingers {
    v4: std::io::Result<surge_ping::Client>,
    v6: std::io::Result<surge_ping::Client>,
}

impl Pingers {
    /// Raw ICMP and ICMPv6 sockets (the checker runs as root; a datagram ICMP socket would need
    /// `net.ipv4.ping_group_range`).
    pub fn new() -> Pingers {
        let open = |kind| {
            let cfg = surge_ping::Config::builder().kind(kind).sock_type_hint(socket2::Type::RAW).build();
            surge_ping::Client::new(&cfg)
        };
        Pingers { v4: open(surge_ping::ICMP::V4), v6: open(surge_ping::ICMP::V6) }
    }
}

impl Default for Pingers {
    fn default() -> Self {
        Pingers::new()
    }
}

/// Runs `probe` against `s` within `timeout`.
///
/// # Errors
/// Why the real server does not count as alive, in a few words (`connect: Connection refused`,
/// `HTTP status 503, expected 200`, `timed out after 500 ms`).
pub async fn run(probe: &Probe, s: &Subject, timeout: Duration, pingers: &Pingers, seq: u16) -> Result<(), String> {
    let work = async {
        match probe {
            Probe::Tcp => tcp(s.to).await.map(drop),
            Probe::Http { path, status, body } => http(s.to, path, *status, body).await,
            Probe::Udp { send, expect } => udp(s.to, send, expect).await,
            Probe::Icmp => icmp(s.to.ip(), pingers, seq, timeout).await,
            Probe::Command { argv } => command(argv, s).await,
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    }
}

async fn tcp(to: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    tokio::net::TcpStream::connect(to).await.map_err(|e| format!("connect: {}", reason(&e)))
}

/// The error's words without Rust's "(os error N)".
fn reason(e: &std::io::Error) -> String {
    let t = e.to_string();
    match t.find(" (os error") {
        Some(i) => t[..i].to_owned(),
        None => t,
    }
}

async fn http(to: SocketAddr, path: &str, want: u16, body: &str) -> Result<(), String> {
    let mut c = tcp(to).await?;
    let host = match to.ip() {
        IpAddr::V6(a) => format!("[{a}]:{}", to.port()),
        IpAddr::V4(a) => format!("{a}:{}", to.port()),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dpvs-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    c.write_all(request.as_bytes()).await.map_err(|e| format!("send: {}", reason(&e)))?;
    let mut got = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).await.map_err(|e| format!("receive: {}", reason(&e)))?;
        got.extend_from_slice(&buf[..n]);
        if n == 0 || got.len() >= HTTP_READ {
            break;
        }
        // Enough once the headers are in and either no body is asked for or it is found.
        if let Some(at) = header_end(&got) {
            if body.is_empty() || contains(&got[at..], body.as_bytes()) {
                break;
            }
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let at = match r.parse(&got) {
        Ok(httparse::Status::Complete(at)) => at,
        Ok(httparse::Status::Partial) if got.is_empty() => return Err("closed without an answer".into()),
        Ok(httparse::Status::Partial) => return Err("incomplete HTTP answer".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let status = r.code.unwrap_or(0);
    if status != want {
        return Err(format!("HTTP status {status}, expected {want}"));
    }
    if !body.is_empty() && !contains(&got[at..], body.as_bytes()) {
        return Err(format!("body lacks {body:?}"));
    }
    Ok(())
}

fn header_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

async fn udp(to: SocketAddr, send: &str, expect: &str) -> Result<(), String> {
    let any: SocketAddr = if to.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }.map_err(|_| "address")?;
    let sock = tokio::net::UdpSocket::bind(any).await.map_err(|e| format!("socket: {}", reason(&e)))?;
    sock.connect(to).await.map_err(|e| format!("connect: {}", reason(&e)))?;
    sock.send(send.as_bytes()).await.map_err(|e| format!("send: {}", reason(&e)))?;
    let mut buf = vec![0u8; 65536];
    // An ICMP port unreachable comes back as "connection refused".
    let n = sock.recv(&mut buf).await.map_err(|e| format!("receive: {}", reason(&e)))?;
    if !contains(&buf[..n], expect.as_bytes()) {
        return Err(format!("answer lacks {expect:?}"));
    }
    Ok(())
}

async fn icmp(to: IpAddr, pingers: &Pingers, seq: u16, timeout: Duration) -> Result<(), String> {
    let client = match to {
        IpAddr::V4(_) => &pingers.v4,
        IpAddr::V6(_) => &pingers.v6,
    };
    let client = client.as_ref().map_err(|e| format!("ICMP socket: {}", reason(e)))?;
    let mut pinger = client.pinger(to, surge_ping::PingIdentifier(std::process::id() as u16)).await;
    pinger.timeout(timeout);
    match pinger.ping(surge_ping::PingSequence(seq), b"dpvs-health").await {
        Ok(_) => Ok(()),
        Err(surge_ping::SurgeError::Timeout { .. }) => Err("no echo reply".into()),
        Err(e) => Err(format!("echo: {e}")),
    }
}

async fn command(argv: &[String], s: &Subject) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("DPVS_REAL_ADDR", s.to.ip().to_string())
        .env("DPVS_REAL_PORT", s.to.port().to_string())
        .env("DPVS_VIP", s.vip.ip().to_string())
        .env("DPVS_VPORT", s.vip.port().to_string())
        .env("DPVS_PROTOCOL", s.protocol)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // The timeout drops the future: the child is killed (and reaped by tokio).
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{program}: {}", reason(&e)))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.lines().next().unwrap_or_default().trim();
    let how = match out.status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_owned(),
    };
    Err(if said.is_empty() { how } else { format!("{how}: {said}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(to: SocketAddr) -> Subject {
        Subject { to, vip: "198.18.0.100:80".parse().unwrap(), protocol: "tcp" }
    }

    async fn check(probe: &Probe, to: SocketAddr) -> Result<(), String> {
        run(probe, &subject(to), Duration::from_millis(1000), &Pingers::new(), 1).await
    }

    /// A one-answer HTTP server on loopback: returns its address.
    async fn http_once(answer: &'static str) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).await;
            let _ = c.write_all(answer.as_bytes()).await;
        });
        at
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_and_http_checks_on_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = l.local_addr().unwrap();
        assert_eq!(check(&Probe::Tcp, at).await, Ok(()));
        drop(l);
        assert_eq!(check(&Probe::Tcp, at).await, Err("connect: Connection refused".into()));
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n";
        let http = |body: &str| Probe::Http { path: "/health".into(), status: 200, body: body.into() };
        assert_eq!(check(&http(""), http_once(ok).await).await, Ok(()));
        assert_eq!(check(&http("all ok"), http_once(ok).await).await, Ok(()));
        assert_eq!(check(&http("ready"), http_once(ok).await).await, Err("body lacks \"ready\"".into()));
        let busy = "HTTP/1.0 503 Service Unavailable\r\n\r\n";
        assert_eq!(check(&http(""), http_once(busy).await).await, Err("HTTP status 503, expected 200".into()));
        assert!(check(&http(""), http_once("SSH-2.0-OpenSSH\r\n").await).await.unwrap_err().starts_with("not an HTTP"));
        // A server that accepts and says nothing: the timeout.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = run(&http(""), &subject(l.local_addr().unwrap()), Duration::from_millis(50), &Pingers::new(), 1).await;
        assert_eq!(r, Err("timed out after 50 ms".into()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn udp_and_command_checks() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                let answer = if &buf[..n] == b"ping" { &b"pong!"[..] } else { &b"what?"[..] };
                let _ = server.send_to(answer, from).await;
            }
        });
        let udp = |send: &str, expect: &str| Probe::Udp { send: send.into(), expect: expect.into() };
        assert_eq!(check(&udp("ping", "pong"), at).await, Ok(()));
        assert_eq!(check(&udp("hello", "pong"), at).await, Err("answer lacks \"pong\"".into()));
        // Nobody on the port: the kernel's port unreachable.
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(check(&udp("ping", ""), gone).await, Err("receive: Connection refused".into()));
        let sh = |script: &str| Probe::Command { argv: vec!["/bin/sh".into(), "-c".into(), script.into()] };
        let to: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let env = "[ \"$DPVS_REAL_ADDR:$DPVS_REAL_PORT $DPVS_VIP:$DPVS_VPORT $DPVS_PROTOCOL\" = \"198.18.1.2:8080 198.18.0.100:80 tcp\" ]";
        assert_eq!(check(&sh(env), to).await, Ok(()));
        assert_eq!(
            check(&sh("echo down for maintenance >&2; exit 3"), to).await,
            Err("exit status 3: down for maintenance".into())
        );
        let r = run(&sh("sleep 5"), &subject(to), Duration::from_millis(50), &Pingers::new(), 1).await;
        assert_eq!(r, Err("timed out after 50 ms".into()));
        let missing = Probe::Command { argv: vec!["/nonexistent/check".into()] };
        assert_eq!(check(&missing, to).await, Err("/nonexistent/check: No such file or directory".into()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn icmp_echo_of_loopback() {
        // Raw sockets need root (as the checker runs); elsewhere the socket's error is the reason.
        let r = check(&Probe::Icmp, "127.0.0.1:0".parse().unwrap()).await;
        if nix::unistd::geteuid().is_root() {
            assert_eq!(r, Ok(()));
        } else {
            assert!(r.unwrap_err().starts_with("ICMP socket"));
        }
    }
}
