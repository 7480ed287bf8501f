//! `pummel convert har FILE.har` and `pummel convert curl -- curl ...`: plans from recorded
//! traffic.
//!
//! The reading and converting live in the `pummel-convert` crate; this command reads the
//! input, hands over the flags, checks the plan it gets back with the same loader as
//! `pummel check` (a plan pummel would refuse is never written), writes it, and tells on
//! stderr what was left out and which environment variables the plan needs.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use pummel_convert::{ConvertError, Options, Recorded, curl, har};

use super::{CliError, ExitStatus, print_stdout};

const AFTER_HELP: &str = "\
Examples:
  pummel convert har recording.har -o plan.toml --exclude 'static/*' --exclude '*.png'
  pummel convert har recording.har --only-host api.example.com -o api.toml
  pummel convert curl -o plan.toml -- curl 'https://api.example.com/items' -H 'Authorization: Bearer ...'
  pummel convert curl --file commands.sh -o plan.toml     # several commands, as copied from a browser

The plan replays the requests in the order recorded, one user, once. It has one host (the first
request's, or --only-host's): requests on other hosts are left out, and said so. Secrets
(Authorization, Cookie, API-key headers, tokens in query strings, password and token fields of
JSON and form bodies) are replaced by {{ env(\"NAME\") }} placeholders, listed at the top of the plan.

Exit codes: 0 written, 2 bad input or flags, 3 the plan could not be written.";

/// Flags of `pummel convert`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ConvertArgs {
    /// What to convert.
    #[command(subcommand)]
    pub from: From,
}

/// What `pummel convert` reads.
#[derive(Debug, Subcommand)]
pub enum From {
    /// A HAR file (saved by a browser's developer tools, Playwright or a proxy).
    Har(HarArgs),
    /// curl command lines ("Copy as cURL"): after `--`, or from --file.
    Curl(CurlArgs),
}

/// `pummel convert har`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct HarArgs {
    /// The HAR file (`-` for standard input).
    #[arg(value_name = "FILE.har")]
    pub file: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Write no think steps (by default, pauses of 100 ms or more between requests are kept).
    #[arg(long)]
    pub no_think: bool,
}

/// `pummel convert curl`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct CurlArgs {
    /// Read the commands from this file (`-` for standard input) instead of after `--`.
    #[arg(short, long, value_name = "FILE", conflicts_with = "command")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The curl command, after `--` (`-- curl -H ... URL`), or as one quoted string.
    #[arg(last = true, value_name = "CURL COMMAND")]
    pub command: Vec<String>,
}

/// Flags both inputs share.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Write the plan here (default: standard output).
    #[arg(short, long, value_name = "PLAN.toml")]
    pub output: Option<PathBuf>,
    /// Keep the requests to this host (`api.example.com`, or `host:port`); default: the first
    /// request's.
    #[arg(long, value_name = "HOST")]
    pub only_host: Option<String>,
    /// Leave out requests whose path matches this glob, e.g. 'static/*' or '*.png' (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep a header that is dropped by default, e.g. Accept-Encoding (repeatable).
    #[arg(long, value_name = "NAME")]
    pub keep_header: Vec<String>,
}

/// Runs `pummel convert`.
pub fn run(args: ConvertArgs) -> Result<ExitStatus, CliError> {
    let input = |e: ConvertError| CliError::usage(anyhow!(e));
    let (requests, notes, common, options) = match args.from {
        From::Har(har_args) => {
            let (text, source) = read_input(&har_args.file)?;
            let parsed = har::parse(&text, &source).map_err(input)?;
            let options = Options {
                no_think: har_args.no_think,
                source,
                command: "pummel convert har".into(),
                ..Options::default()
            };
            (parsed.requests, parsed.notes, har_args.common, options)
        }
        From::Curl(curl_args) => {
            let parsed = match (&curl_args.file, curl_args.command.as_slice()) {
                (Some(path), _) => {
                    let (text, source) = read_input(path)?;
                    curl::parse_text(&text, &source)
                }
                (None, [one]) if one.trim_start().starts_with("curl") && one.contains(char::is_whitespace) => {
                    curl::parse_text(one, "the command")
                }
                (None, []) => {
                    return Err(CliError::usage(anyhow!(
                        "give the curl command after `--` (pummel convert curl -- curl URL ...) or with --file"
                    )));
                }
                (None, command) => curl::parse_args(command),
            }
            .map_err(input)?;
            let source = match &curl_args.file {
                Some(path) => path.display().to_string(),
                None => "a curl command".to_string(),
            };
            let options =
                Options { no_think: true, source, command: "pummel convert curl".into(), ..Options::default() };
            (parsed.requests, parsed.notes, curl_args.common, options)
        }
    };
    convert(requests, notes, &common, options)
}

fn convert(
    requests: Vec<Recorded>,
    notes: Vec<String>,
    common: &CommonArgs,
    mut options: Options,
) -> Result<ExitStatus, CliError> {
    options.only_host = common.only_host.clone();
    options.exclude = common.exclude.clone();
    options.keep_headers = common.keep_header.clone();
    let mut converted = pummel_convert::convert(requests, &options).map_err(|e| match e {
        ConvertError::Secret(_) => CliError::cannot_start(anyhow!(e)),
        other => CliError::usage(anyhow!(other)),
    })?;
    // The loader of `pummel check` and `pummel run`: a plan pummel would refuse is a bug here.
    if let Err(report) = pummel_plan::parse("the converted plan", &converted.text, &pummel_plan::Options::default()) {
        eprint!("{report}");
        return Err(CliError::internal(anyhow!(
            "the converted plan does not pass `pummel check` (a bug in pummel convert); nothing was written"
        )));
    }
    for note in notes.iter().chain(&converted.warnings) {
        eprintln!("note: {note}");
    }
    match &common.output {
        None => print_stdout(&converted.text),
        Some(path) => write_plan(path, &converted.text)?,
    }
    let target = common.output.as_ref().map_or_else(|| "the plan".to_string(), |p| p.display().to_string());
    let requests = std::mem::take(&mut converted.requests);
    eprintln!("{target}: {requests} request{} converted", if requests == 1 { "" } else { "s" });
    if !converted.variables.is_empty() {
        let names: Vec<&str> = converted.variables.iter().map(|v| v.name.as_str()).collect();
        eprintln!(
            "its secrets were replaced by environment variables; set {} before running it (see the comment at its top)",
            names.join(", ")
        );
    }
    Ok(ExitStatus::Pass)
}

/// The input's text and its name for messages; `-` is standard input.
fn read_input(path: &Path) -> Result<(String, String), CliError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::usage(anyhow!("cannot read standard input: {e}")))?;
        return Ok((text, "<stdin>".to_string()));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(anyhow!("cannot read {}: {e}", path.display())))?;
    Ok((text, path.display().to_string()))
}

/// Writes the plan atomically (a temporary file renamed into place).
fn write_plan(path: &Path, text: &str) -> Result<(), CliError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::internal(anyhow!("cannot write {}: {e}", path.display()))
    })
}
