//! The pure parts of the protocol: a claimed request, what a driver answers, and what the daemon
//! does with a result (answer, retry later, give up).

use serde::Deserialize;

use crate::Error;

/// A request claimed with autoscale.claim_provision_request().
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: i64,
    pub kind: Kind,
    pub request_key: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Provision,
    Deprovision,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, Error> {
        match s {
            "provision" => Ok(Kind::Provision),
            "deprovision" => Ok(Kind::Deprovision),
            other => Err(Error::Protocol(format!(
                "request kind '{other}' is not handled (allowed: provision, deprovision)"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provision => "provision",
            Kind::Deprovision => "deprovision",
        }
    }
}

/// A node: what a driver answers a provision request with, and what a deprovision request names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Node {
    pub host: String,
    pub port: i32,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Request {
    /// The json a command driver reads on stdin.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind.as_str(),
            "request_key": self.request_key,
            "attempt": self.attempts,
            "payload": self.payload,
        })
    }

    /// The node a deprovision request names (payload -> node).
    pub fn node(&self) -> Result<Node, Error> {
        serde_json::from_value::<Node>(self.payload["node"].clone()).map_err(|e| {
            Error::Protocol(format!(
                "request {}: payload -> node is not {{\"host\": text, \"port\": int}}: {e}",
                self.id
            ))
        })
    }

    /// The request key, checked: it names a data directory.
    /// The postgresql.conf lines of the size a resize asks for (payload -> size, settings by
    /// name); none when the request names no size.
    pub fn size_lines(&self) -> Result<Vec<String>, Error> {
        match self.payload.get("size") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(size) => autoscale_core::resize::size_settings(size)
                .map(|v| v.into_iter().map(|(n, v)| format!("{n} = '{v}'")).collect())
                .map_err(|allowed| {
                    Error::Protocol(format!(
                        "request {}: payload -> size must be {allowed}",
                        self.id
                    ))
                }),
        }
    }

    pub fn safe_key(&self) -> Result<&str, Error> {
        let k = self.request_key.as_str();
        if k.len() == 36 && k.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            Ok(k)
        } else {
            Err(Error::Protocol(format!(
                "request {}: request_key '{k}' is not a uuid",
                self.id
            )))
        }
    }
}

/// A driver's stdout for a provision request: one json object {"host": text, "port": 1..65535}
/// (other keys ignored; surrounding whitespace allowed).
pub fn parse_answer(stdout: &str) -> Result<Node, Error> {
    let text = stdout.trim();
    let n: Node = serde_json::from_str(text).map_err(|e| {
        Error::Protocol(format!(
            "the driver printed {} where {{\"host\": text, \"port\": int}} was expected: {e}",
            tail(text, 200)
        ))
    })?;
    if n.host.trim().is_empty() || n.host.len() > 253 {
        return Err(Error::Protocol(format!(
            "the driver answered host '{}'; allowed: a host name or IP address of 1 to 253 characters",
            tail(&n.host, 60)
        )));
    }
    if !(1..=65535).contains(&n.port) {
        return Err(Error::Protocol(format!(
            "the driver answered port {}; allowed: 1 to 65535",
            n.port
        )));
    }
    Ok(n)
}

/// What the daemon does after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Answer(Node),
    /// fail_provision_request(id, error, retry)
    Fail {
        error: String,
        retry: bool,
    },
}

/// The decision after attempt `attempts` (1 = the first) of `max_attempts`.
pub fn decide(result: Result<Node, Error>, attempts: i32, max_attempts: i32) -> Next {
    match result {
        Ok(n) => Next::Answer(n),
        Err(e) => Next::Fail {
            retry: e.retryable() && attempts < max_attempts,
            error: format!("attempt {attempts} of {max_attempts}: {e}"),
        },
    }
}

/// The last `max` bytes of `s` (on a character boundary): where a program says what went wrong.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: Kind, payload: serde_json::Value) -> Request {
        Request {
            id: 7,
            kind,
            request_key: "0b7f3e52-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            payload,
            attempts: 1,
        }
    }

    #[test]
    fn answers_are_parsed_and_checked() {
        assert_eq!(
            parse_answer(" {\"host\": \"10.0.0.5\", \"port\": 5432, \"id\": \"i-1\"}\n").unwrap(),
            Node {
                host: "10.0.0.5".into(),
                port: 5432
            }
        );
        for (out, word) in [
            ("", "expected"),
            ("ok", "expected"),
            ("{\"host\": \"h\"}", "port"),
            ("{\"host\": \"h\", \"port\": \"5432\"}", "expected"),
            ("{\"host\": \"\", \"port\": 5432}", "host ''"),
            ("{\"host\": \"h\", \"port\": 0}", "port 0"),
            ("{\"host\": \"h\", \"port\": 70000}", "port 70000"),
        ] {
            let e = parse_answer(out).unwrap_err().to_string();
            assert!(e.contains(word), "{out}: {e}");
        }
    }

    #[test]
    fn kinds_and_nodes() {
        assert_eq!(Kind::parse("deprovision").unwrap(), Kind::Deprovision);
        assert!(Kind::parse("provision_clone")
            .unwrap_err()
            .to_string()
            .contains("provision_clone"));
        let d = req(
            Kind::Deprovision,
            serde_json::json!({"node": {"host": "127.0.0.1", "port": 8305}}),
        );
        assert_eq!(d.node().unwrap().to_string(), "127.0.0.1:8305");
        assert!(req(Kind::Deprovision, serde_json::json!({}))
            .node()
            .is_err());
        assert_eq!(d.to_json()["kind"], "deprovision");
        assert_eq!(d.to_json()["payload"]["node"]["port"], 8305);
    }

    #[test]
    fn keys_name_directories_only_when_uuids() {
        assert!(req(Kind::Provision, serde_json::json!({}))
            .safe_key()
            .is_ok());
        let mut r = req(Kind::Provision, serde_json::json!({}));
        r.request_key = "../../etc/passwd-0000000000000000000".into();
        assert!(r.safe_key().is_err());
    }

    #[test]
    fn a_resize_request_carries_its_size_as_settings() {
        let r = req(
            Kind::Provision,
            serde_json::json!({"size": {"shared_buffers": "256MB", "max_connections": 300}}),
        );
        assert_eq!(
            r.size_lines().unwrap(),
            vec!["max_connections = '300'", "shared_buffers = '256MB'"]
        );
        assert!(req(Kind::Provision, serde_json::json!({}))
            .size_lines()
            .unwrap()
            .is_empty());
        let bad = req(
            Kind::Provision,
            serde_json::json!({"size": {"work_mem": "1MB'\nx = '1"}}),
        );
        assert!(bad
            .size_lines()
            .unwrap_err()
            .to_string()
            .contains("payload -> size must be"));
    }

    #[test]
    fn decisions() {
        let n = Node {
            host: "h".into(),
            port: 1,
        };
        assert_eq!(decide(Ok(n.clone()), 1, 3), Next::Answer(n));
        let fail = |e: Error, a| decide(Err(e), a, 3);
        assert_eq!(
            fail(Error::Driver("exit status 1: boom".into()), 1),
            Next::Fail {
                error: "attempt 1 of 3: driver: exit status 1: boom".into(),
                retry: true
            }
        );
        // the last attempt gives up
        assert!(matches!(
            fail(Error::Driver("x".into()), 3),
            Next::Fail { retry: false, .. }
        ));
        // a request the daemon cannot handle is never retried
        assert!(matches!(
            fail(Error::Protocol("x".into()), 1),
            Next::Fail { retry: false, .. }
        ));
    }

    #[test]
    fn tails_keep_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }
}
