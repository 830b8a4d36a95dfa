//! Filter metrics, defined per VM through the proxy-wasm metrics ABI (Envoy shows them under
//! `/stats` and `/stats/prometheus`). Cardinality is bounded: decisions and auth-failure
//! reasons are closed sets, per-tool counters stop growing at `MAX_TOOL_SERIES` and then count
//! under `other`.

use std::cell::RefCell;
use std::collections::HashMap;

use super::abi;

const MAX_TOOL_SERIES: usize = 200;
const PREFIX: &str = "mcp_gateway";

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    request_us: Option<u32>,
    scan_us: Option<u32>,
}

impl Metrics {
    pub fn define() -> Self {
        let hist = |name: &str| abi::define_metric(abi::METRIC_HISTOGRAM, &format!("{PREFIX}.{name}")).ok();
        Self {
            ids: RefCell::default(),
            request_us: hist("request_decide_us"),
            scan_us: hist("response_scan_us"),
        }
    }

    fn counter(&self, name: &str) -> Option<u32> {
        let mut ids = self.ids.try_borrow_mut().ok()?;
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        let id = abi::define_metric(abi::METRIC_COUNTER, &format!("{PREFIX}.{name}")).ok()?;
        ids.insert(name.to_string(), id);
        Some(id)
    }

    fn inc(&self, name: &str) {
        if let Some(id) = self.counter(name) {
            abi::increment_metric(id, 1);
        }
    }

    /// Counts a decision; auth failures and injection blocks also by reason.
    pub fn count_decision(&self, decision: &str, rule: &str) {
        self.inc(&format!("decision.{decision}"));
        match decision {
            "auth_fail" => self.inc(&format!("auth_fail.{}", stat_safe(rule))),
            "ratelimited" => self.inc("ratelimit.refused"),
            _ => {}
        }
    }

    /// Counts a forwarded call per backend and tool (bounded, see module docs).
    pub fn count_call(&self, backend: &str, tool: &str) {
        let series = format!("calls.{}.{}", stat_safe(backend), stat_safe(tool));
        let known = self.ids.try_borrow().map(|m| m.contains_key(&series) || m.len() < MAX_TOOL_SERIES);
        if known.unwrap_or(false) {
            self.inc(&series);
        } else {
            self.inc("calls.other");
        }
    }

    /// Counts tools whose listed definition is not the accepted one (tool pinning).
    pub fn count_pin_changed(&self, tools: usize) {
        if let Some(id) = self.counter("tool_pinning.changed") {
            abi::increment_metric(id, i64::try_from(tools).unwrap_or(i64::MAX));
        }
    }

    pub fn record_request_us(&self, us: u64) {
        if let Some(id) = self.request_us {
            abi::record_metric(id, us);
        }
    }

    pub fn record_scan_us(&self, us: u64) {
        if let Some(id) = self.scan_us {
            abi::record_metric(id, us);
        }
    }
}

/// Stat name segments: ASCII alphanumerics and `_` only (dots would add levels).
fn stat_safe(s: &str) -> String {
    let out: String = s.chars().take(64).map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if out.is_empty() {
        "none".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::stat_safe;

    #[test]
    fn stat_names_are_sanitised() {
        assert_eq!(stat_safe("filesystem"), "filesystem");
        assert_eq!(stat_safe("read.file/x"), "read_file_x");
        assert_eq!(stat_safe(""), "none");
    }
}
