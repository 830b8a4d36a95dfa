//! Text → the injection scorer (`score_text`, and the same text inside tool arguments and
//! results). Checked: no panic, every score is finite and in [0, 1], and scoring is
//! deterministic. (Meaningful once the real scorer replaces the contract stub.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::scorer::{InjectionConfig, Scorer};
use serde_json::json;

thread_local! {
    static SCORER: Scorer = {
        let cfg: InjectionConfig = serde_json::from_value(json!({"enabled": true})).expect("config");
        Scorer::new(&cfg).expect("scorer")
    };
}

fn check(score: f64, what: &str) {
    assert!(score.is_finite() && (0.0..=1.0).contains(&score), "{what}: score {score} outside [0, 1]");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    SCORER.with(|s| {
        let a = s.score_text(&text);
        check(a.score, "text");
        assert_eq!(a.score, s.score_text(&text).score, "non-deterministic score");
        let args = json!({"name": "echo", "arguments": {"message": text, "nested": [text]}});
        check(s.score_request("tools/call", &args).score, "request");
        let result = json!({"content": [{"type": "text", "text": text}], "tools": [{"name": "t", "description": text}]});
        check(s.score_response("tools/call", &result).score, "response");
        check(s.score_response("tools/list", &result).score, "list");
        check(s.score_value(&json!(text)).score, "value");
    });
});
