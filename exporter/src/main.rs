//! `dpvs-exporter`: serves a dpvs instance's counters as Prometheus metrics over HTTP
//! (`GET /metrics`). It needs no DPDK and no slot in the instance; it keeps serving while the
//! instance is down (`dpvs_up 0`) and attaches to the next one.
#![forbid(unsafe_code)]

use clap::CommandFactory;
use clap::Parser;

/// Prometheus exporter of a dpvs instance.
#[derive(Debug, Parser)]
#[command(name = "dpvs-exporter", version)]
struct Cli {
    #[command(flatten)]
    target: ctl::cli::Target,
    /// Address and port to serve `/metrics` on (default: the configuration file's
    /// `[exporter] listen`, else 127.0.0.1:9469).
    #[arg(short, long)]
    listen: Option<String>,
}

fn main() {
    manpages::generate_if_asked(Cli::command);
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DPVS_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let listen = match (&cli.listen, &cli.target.config) {
        (Some(l), _) => l.clone(),
        (None, Some(path)) => match conf::Config::from_file(path) {
            Ok(c) => c.exporter.listen.to_string(),
            Err(e) => {
                eprintln!("dpvs-exporter: {e}");
                std::process::exit(2);
            }
        },
        (None, None) => conf::Exporter::default().listen.to_string(),
    };
    let server = match tiny_http::Server::http(&listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dpvs-exporter: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    tracing::info!(%listen, "serving /metrics");
    let registry = dpvs_exporter::Exporter::new(cli.target).registry();
    for request in server.incoming_requests() {
        let response = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/metrics") => match dpvs_exporter::scrape(&registry) {
                Ok(body) => tiny_http::Response::from_string(body)
                    .with_header(content_type("text/plain; version=0.0.4; charset=utf-8")),
                Err(e) => {
                    tiny_http::Response::from_string(format!("encoding the metrics: {e}\n")).with_status_code(500)
                }
            },
            (tiny_http::Method::Get, "/") => tiny_http::Response::from_string("dpvs-exporter: metrics at /metrics\n"),
            _ => tiny_http::Response::from_string("not found: metrics at /metrics\n").with_status_code(404),
        };
        if let Err(e) = request.respond(response) {
            tracing::debug!("answering a scrape: {e}");
        }
    }
}

fn content_type(value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes("Content-Type", value).unwrap_or_else(|()| unreachable!("a valid header"))
}
