//! The `command` driver: runs the user's program with the request json on stdin. A provision
//! request: it prints {"host": .., "port": ..} on stdout. A deprovision request: exit status 0
//! means done. A non-zero exit status, a bad answer or the timeout fail the attempt, with the
//! exit status and the tail of stderr. The program runs in its own process group, killed whole
//! at the timeout.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config;
use crate::protocol::{parse_answer, tail, Kind, Node, Request};
use crate::Error;

pub struct Driver {
    pub cfg: config::Command,
}

impl Driver {
    /// Provision: the node the program answers. Deprovision: None.
    pub fn run(&self, r: &Request) -> Result<Option<Node>, Error> {
        let stdout = run_program(&self.cfg, &r.to_json().to_string())?;
        match r.kind {
            Kind::Provision => parse_answer(&stdout).map(Some),
            Kind::Deprovision => Ok(None),
        }
    }
}

/// Runs the program to its end (or kills it at the timeout); its stdout.
pub fn run_program(cfg: &config::Command, input: &str) -> Result<String, Error> {
    let mut child = Command::new(&cfg.program)
        .args(&cfg.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Driver(format!("cannot run {}: {e}", cfg.program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a program that does not read its input is fine
        let _ = stdin.write_all(input.as_bytes());
    }
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + Duration::from_secs(cfg.timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                return Err(Error::Driver(format!(
                    "waiting for {}: {e}",
                    cfg.program.display()
                )))
            }
        }
    };
    let Some(status) = status else {
        // the whole group: a shell script's children too
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        let stderr = err.join().unwrap_or_default();
        return Err(Error::Driver(format!(
            "{} timed out after {} s (killed); stderr: {}",
            cfg.program.display(),
            cfg.timeout,
            tail(stderr.trim(), 500)
        )));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::Driver(format!(
            "{} failed ({status}); stderr: {}",
            cfg.program.display(),
            tail(stderr.trim(), 500)
        )));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: u64) -> config::Command {
        config::Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout,
        }
    }

    #[test]
    fn stdin_in_stdout_out() {
        let out = run_program(&sh("cat", 10), "{\"id\": 1}").unwrap();
        assert_eq!(out, "{\"id\": 1}");
    }

    #[test]
    fn failure_carries_status_and_stderr_tail() {
        let e = run_program(
            &sh(
                "echo starting >&2; echo 'no capacity in zone a' >&2; exit 3",
                10,
            ),
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("exit status: 3") && e.contains("no capacity in zone a"),
            "{e}"
        );
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_timeout() {
        let e = run_program(&sh("echo waiting >&2; sleep 60 & wait", 1), "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timed out after 1 s") && e.contains("waiting"),
            "{e}"
        );
    }
}
