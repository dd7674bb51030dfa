//! `dpvs-bench-report CSV [--out DIR]`: the figures `bench/all.sh` wrote, as a table on
//! standard output and, under DIR, a PNG bar chart of every packet rate (Mpps) beside the
//! ceiling of the same path and the kernel peer measured in the same run
//! (`rates.png`). When a figure was measured several times, the last one counts.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;
use plotters::prelude::*;

#[derive(Debug, Parser)]
#[command(name = "dpvs-bench-report", version)]
struct Args {
    /// The CSV of `bench/all.sh` (time, host, bench, metric, value, unit).
    csv: PathBuf,
    /// Directory the chart goes into (created if missing).
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// A TrueType font for the chart's text.
    #[arg(long, default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    font: PathBuf,
}

/// One figure of the CSV.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    host: String,
    bench: String,
    metric: String,
    value: f64,
    unit: String,
}

/// The figures of `text`, the last of each (bench, metric) in first-seen order.
fn parse(text: &str) -> Result<Vec<Figure>, String> {
    let mut out: Vec<Figure> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let [_, host, bench, metric, value, unit] = f[..] else {
            return Err(format!("line {}: expected 6 fields, got {}", i + 1, f.len()));
        };
        let value = value.parse().map_err(|_| format!("line {}: {value:?} is not a number", i + 1))?;
        let fig = Figure { host: host.into(), bench: bench.into(), metric: metric.into(), value, unit: unit.into() };
        match out.iter_mut().find(|o| o.bench == fig.bench && o.metric == fig.metric) {
            Some(o) => *o = fig,
            None => out.push(fig),
        }
    }
    Ok(out)
}

/// The table of `figures`, aligned.
fn table(figures: &[Figure]) -> String {
    let w = figures.iter().map(|f| f.bench.len() + f.metric.len() + 1).max().unwrap_or(0).max(6);
    let mut s = format!("{:<w$}  {:>12}  unit\n", "figure", "value");
    for f in figures {
        s += &format!("{:<w$}  {:>12}  {}\n", format!("{} {}", f.bench, f.metric), f.value, f.unit);
    }
    s
}

/// The rates (Mpps) to chart, each with its label, in CSV order.
fn rates(figures: &[Figure]) -> Vec<(String, f64)> {
    figures.iter().filter(|f| f.unit == "Mpps").map(|f| (format!("{} {}", f.bench, f.metric), f.value)).collect()
}

fn chart(bars: &[(String, f64)], host: &str, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let n = bars.len() as i32;
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.15;
    let root = BitMapBackend::new(path, (1100, 90 + 26 * bars.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(format!("dpvs benchmarks: packets per second ({host})"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(360)
        .build_cartesian_2d(0f64..max, (0..n).into_segmented())?;
    c.configure_mesh()
        .disable_y_mesh()
        .x_max_light_lines(1)
        .x_desc("Mpps")
        .y_label_formatter(&|v| match v {
            // The first figure on top.
            SegmentValue::CenterOf(i) => bars.get((n - 1 - *i) as usize).map(|b| b.0.clone()).unwrap_or_default(),
            _ => String::new(),
        })
        .y_labels(bars.len())
        .draw()?;
    let row = |i: usize| n - 1 - i as i32;
    c.draw_series(bars.iter().enumerate().map(|(i, (label, v))| {
        let colour = if label.starts_with("nft") {
            RED
        } else if label.contains("testpmd") {
            BLACK
        } else {
            BLUE
        };
        let mut r = Rectangle::new(
            [(0.0, SegmentValue::Exact(row(i))), (*v, SegmentValue::Exact(row(i) + 1))],
            colour.mix(0.7).filled(),
        );
        r.set_margin(3, 3, 0, 0);
        r
    }))?;
    c.draw_series(
        bars.iter()
            .enumerate()
            .map(|(i, (_, v))| Text::new(format!(" {v:.2}"), (*v, SegmentValue::CenterOf(row(i))), ("sans-serif", 14))),
    )?;
    root.present()?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let run = || -> Result<PathBuf, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(&args.csv).map_err(|e| format!("{}: {e}", args.csv.display()))?;
        let figures = parse(&text)?;
        print!("{}", table(&figures));
        let bars = rates(&figures);
        if bars.is_empty() {
            return Err("no packet rates (Mpps) to chart".into());
        }
        let font = std::fs::read(&args.font).map_err(|e| format!("{}: {e}", args.font.display()))?;
        plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
            .map_err(|_| format!("{}: not a font", args.font.display()))?;
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let path = args.out.join("rates.png");
        let host = figures.first().map(|f| f.host.clone()).unwrap_or_default();
        chart(&bars, &host, &path)?;
        Ok(path)
    };
    match run() {
        Ok(path) => {
            println!("chart: {}", path.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dpvs-bench-report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "time,host,bench,metric,value,unit\n\
        t,h/2cpu,memif-forward,testpmd_io_rx,15.91,Mpps\n\
        t,h/2cpu,fnat-udp-flows,translated_1flows,6.3,Mpps\n\
        t,h/2cpu,fnat-udp-flows,busy_cycles_per_packet_1flows,350,cycles\n\
        t,h/2cpu,fnat-udp-flows,translated_1flows,6.4,Mpps\n";

    #[test]
    fn the_last_figure_of_each_counts_and_only_rates_are_charted() {
        let f = parse(CSV).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            rates(&f),
            [("memif-forward testpmd_io_rx".into(), 15.91), ("fnat-udp-flows translated_1flows".into(), 6.4)]
        );
        let t = table(&f);
        assert!(t.contains("fnat-udp-flows busy_cycles_per_packet_1flows           350  cycles"), "{t}");
    }

    #[test]
    fn malformed_lines_are_named() {
        assert_eq!(parse("h\nt,h,b,m,1\n").unwrap_err(), "line 2: expected 6 fields, got 5");
        assert_eq!(parse("h\nt,h,b,m,x,Mpps\n").unwrap_err(), "line 2: \"x\" is not a number");
    }
}
