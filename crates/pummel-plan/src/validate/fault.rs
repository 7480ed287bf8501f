//! `[[fault]]` and `[proxy.NAME]`: checked with the same builder as `--fault`
//! (`pummel_faults::FaultFields::build`), each mistake pointed at the key it is about.

use std::collections::BTreeMap;
use std::ops::Range;

use pummel_faults::{FaultFields, FaultPlan, ProxyDef};
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{RawFault, RawMap, RawPlan};

impl Validator<'_> {
    /// The proxies and faults of the plan.
    pub(super) fn faults(&mut self, raw: &RawPlan) -> FaultPlan {
        let mut plan = FaultPlan::default();
        // Faults may name every proxy declared, also one with a mistake of its own (reported).
        let mut declared = Vec::new();
        if let Some(proxies) = &raw.proxy {
            for (name, proxy) in proxies.get_ref() {
                let (listen, upstream) = (&proxy.get_ref().listen, &proxy.get_ref().upstream);
                let listen = self.proxy_address(listen.as_ref(), name, "listen", proxy.span());
                let upstream = self.proxy_address(upstream.as_ref(), name, "upstream", proxy.span());
                let valid = listen.is_some() && upstream.is_some();
                let def = ProxyDef {
                    name: name.get_ref().clone(),
                    listen: listen.unwrap_or_default(),
                    upstream: upstream.unwrap_or_default(),
                };
                if valid {
                    plan.proxies.push(def.clone());
                }
                declared.push(def);
            }
        }
        if let Some(text) = &raw.steady_state {
            match pummel_faults::parse_steady_state(text.get_ref()) {
                Ok(steady) => plan.steady_state = Some(steady),
                Err(e) => self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, text.span(), format!("steady_state: {e}"))
                        .with_help("e.g. steady_state = \"error_rate=2% p99_factor=3 p99_slack=50ms ok_share=50%\""),
                ),
            }
        }
        let mut names: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for fault in &raw.fault {
            let Some(built) = self.fault(fault, &declared) else { continue };
            let at = fault.get_ref().name.as_ref().map_or_else(|| self.fault_start(fault), |n| n.span());
            if names.insert(built.name.clone(), at.clone()).is_some() {
                self.push(
                    Diagnostic::new(DiagnosticKind::Conflict, at, format!("a second fault named {:?}", built.name))
                        .with_help("give each [[fault]] its own name = \"...\""),
                );
                continue;
            }
            plan.faults.push(built);
        }
        plan
    }

    /// A proxy's `listen` or `upstream`: required, `HOST:PORT` or a port.
    fn proxy_address(
        &mut self,
        value: Option<&Spanned<String>>,
        name: &Spanned<String>,
        key: &str,
        table: Range<usize>,
    ) -> Option<String> {
        let Some(value) = value else {
            let span = if table.is_empty() { name.span() } else { table };
            // Not `Missing`: those are dropped when a key of the file had the wrong shape.
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, span, format!("[proxy.{}] needs {key}", name.get_ref()))
                    .with_help("e.g. listen = \"127.0.0.1:18080\", upstream = \"127.0.0.1:8080\""),
            );
            return None;
        };
        match pummel_proxy::quick::address(value.get_ref()) {
            Ok(address) => Some(address),
            Err(e) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, value.span(), format!("{key}: {e}"))
                        .with_help("expected HOST:PORT, or a port alone for loopback"),
                );
                None
            }
        }
    }

    /// The span that stands for a whole `[[fault]]` table: its first key.
    fn fault_start(&self, fault: &Spanned<RawFault>) -> Range<usize> {
        let f = fault.get_ref();
        let spans = [
            f.at.as_ref().map(|v| self.key(v)),
            f.length.as_ref().map(|v| self.key(v)),
            f.proxy.as_ref().map(|v| self.key(v)),
            f.signal.as_ref().map(|v| self.key(v)),
            f.kill.as_ref().map(|v| self.key(v)),
            f.exec.as_ref().map(|v| self.key(v)),
            f.pid.as_ref().map(|v| self.key(v)),
            f.port.as_ref().map(|v| self.key(v)),
        ];
        spans.into_iter().flatten().min_by_key(|s| s.start).unwrap_or_else(|| fault.span())
    }

    fn fault(&mut self, fault: &Spanned<RawFault>, proxies: &[ProxyDef]) -> Option<pummel_faults::Fault> {
        let f = fault.get_ref();
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        let toxic = match &f.toxic {
            Some(table) => Some(self.toxic_text(table)?),
            None => None,
        };
        let fields = FaultFields {
            name: text(&f.name),
            at: f.at.as_ref().map(|d| d.get_ref().0.clone()),
            length: f.length.as_ref().map(|d| d.get_ref().0.clone()),
            proxy: text(&f.proxy),
            listen: None,
            upstream: None,
            toxic,
            down: f.down.as_ref().is_some_and(|d| *d.get_ref()),
            pid: f.pid.as_ref().map(|p| p.get_ref().to_string()),
            port: f.port.as_ref().map(|p| p.get_ref().to_string()),
            signal: text(&f.signal),
            kill: f.kill.as_ref().is_some_and(|k| *k.get_ref()),
            restart: text(&f.restart),
            exec: text(&f.exec),
            undo: text(&f.undo),
        };
        match fields.build(proxies) {
            Ok(built) => Some(built),
            Err(e) => {
                let value_span = |key: &str| -> Option<Range<usize>> {
                    match key {
                        "at" => f.at.as_ref().map(Spanned::span),
                        "for" => f.length.as_ref().map(Spanned::span),
                        "proxy" => f.proxy.as_ref().map(Spanned::span),
                        "toxic" => f.toxic.as_ref().map(Spanned::span),
                        "down" => f.down.as_ref().map(Spanned::span),
                        "pid" => f.pid.as_ref().map(Spanned::span),
                        "port" => f.port.as_ref().map(Spanned::span),
                        "signal" => f.signal.as_ref().map(Spanned::span),
                        "kill" => f.kill.as_ref().map(Spanned::span),
                        "restart" => f.restart.as_ref().map(Spanned::span),
                        "exec" => f.exec.as_ref().map(Spanned::span),
                        "undo" => f.undo.as_ref().map(Spanned::span),
                        _ => None,
                    }
                };
                let span = value_span(e.key).unwrap_or_else(|| self.fault_start(fault));
                let mut diagnostic =
                    Diagnostic::new(DiagnosticKind::Invalid, span, format!("[[fault]]: {}", e.message));
                if e.key.is_empty() {
                    diagnostic = diagnostic.with_help(
                        "a fault is at = \"30s\", optionally for = \"10s\", and one of: proxy = \"NAME\" with toxic \
                         = { ... } or down = true; signal = \"STOP\" or kill = true with pid = N or port = N; exec = \"...\"",
                    );
                }
                self.push(diagnostic);
                None
            }
        }
    }

    /// `{ type = "latency", latency = 200, stream = "both" }` as `latency:latency=200,stream=both`.
    fn toxic_text(&mut self, table: &Spanned<RawMap<toml::Value>>) -> Option<String> {
        let mut type_name = None;
        let mut pairs = Vec::new();
        for (key, value) in table.get_ref() {
            let shown = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                _ => {
                    self.push(Diagnostic::new(
                        DiagnosticKind::Type,
                        value.span(),
                        format!("toxic.{}: expected a number or a string", key.get_ref()),
                    ));
                    return None;
                }
            };
            if key.get_ref() == "type" {
                type_name = Some(shown);
            } else {
                pairs.push(format!("{}={shown}", key.get_ref()));
            }
        }
        let Some(type_name) = type_name else {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, table.span(), "toxic needs type = \"...\"")
                    .with_help(format!("one of {}", pummel_proxy::TYPES.join(", "))),
            );
            return None;
        };
        Some(if pairs.is_empty() { type_name } else { format!("{type_name}:{}", pairs.join(",")) })
    }
}
