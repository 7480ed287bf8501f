//! `pummel report`: turns a results file into an HTML page, markdown tables, a CSV timeline or
//! JUnit XML.
//!
//! The rendering lives in the `pummel-report` crate; this command only picks the format, reads
//! the file (a bad one is a usage error, exit 2) and writes the output where it was asked.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use pummel_report::{csv, html, junit, markdown};

use super::{CliError, ExitStatus};

/// Where the HTML report goes when `-o` is not given.
const DEFAULT_HTML: &str = "report.html";

const AFTER_HELP: &str = "\
Examples:
  pummel report results.json                      # writes report.html
  pummel report results.json -o run-42.html
  pummel report results.json --format md >> README.md
  pummel report results.json --format csv -o timeline.csv
  pummel report results.json --format junit -o junit.xml

The HTML page is self-contained (inline CSS and SVG charts, no script, nothing loaded from the
network): it works offline and can be attached to a CI run as is.

Exit codes: 0 written, 2 bad results file or flags, 3 the output could not be written.";

/// Output formats of `pummel report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One self-contained page with charts and tables.
    Html,
    /// Markdown tables (summary, latency, failures, stages or find-limit steps).
    Md,
    /// The per-second timeline, one row per second.
    Csv,
    /// JUnit XML: a test case per threshold, check and find-limit step (as `--junit` writes).
    Junit,
}

/// Flags of `pummel report`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ReportArgs {
    /// A results file written by `pummel run -o`, `pummel demo` or `pummel find-limit`.
    #[arg(value_name = "RESULTS.json")]
    pub results: PathBuf,
    /// Where to write: a file, or `-` for stdout. Default: report.html for html, stdout for md,
    /// csv and junit.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What to produce.
    #[arg(short, long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
}

/// Runs `pummel report`.
pub fn run(args: ReportArgs) -> Result<ExitStatus, CliError> {
    let doc = pummel_report::load(&args.results).map_err(|e| CliError::usage(anyhow!(e)))?;
    let source = args
        .results
        .file_name()
        .map_or_else(|| args.results.display().to_string(), |n| n.to_string_lossy().into_owned());
    let text = match args.format {
        Format::Html => html::render(&doc, &source),
        Format::Md => markdown::render(&doc),
        Format::Csv => csv::render(&doc),
        Format::Junit => {
            junit::render(&doc, &format!("pummel {source}")).map_err(|e| CliError::internal(anyhow!(e)))?
        }
    };
    let output = match (&args.output, args.format) {
        (Some(path), _) if path.as_os_str() == "-" => None,
        (Some(path), _) => Some(path.clone()),
        (None, Format::Html) => Some(PathBuf::from(DEFAULT_HTML)),
        (None, _) => None,
    };
    match output {
        None => write_stdout(&text)?,
        Some(path) => {
            write_file(&path, &text)?;
            if args.format == Format::Html {
                eprintln!("wrote {} ({} KiB): open it in a browser", path.display(), text.len().div_ceil(1024));
            } else {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitStatus::Pass)
}

/// Writes the whole text to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::internal(anyhow!(e).context("writing to stdout")))
        }
        _ => Ok(()),
    }
}

/// Writes to a temporary file beside `path`, then renames it into place, so a reader (a
/// browser reloading the page) never sees half a report.
fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::internal(e)
        })
}
