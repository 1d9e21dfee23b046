//! The audit chain as an auditor outside the operator's network checks it, through the real
//! binary: `trx-energy serve` answers the pages and signed heads, `audit verify-api` checks them
//! with nothing but a token, `audit export` ends with a signed head that `audit verify-export`
//! (and the Python script of docs/audit.md) checks offline. Tampering with the database is
//! named: an altered event by its audit number and aggregate, a rewrite that recomputes the
//! chain by the heads signed before it. The audit key never appears in any output, log line,
//! answer or event.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use engine::testing::TestDb;
use projections::testing::{insert_commits, simulate, tamperer, Ctx};
use serde_json::Value;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

const JWT_SECRET: &str = "a test secret for the audit anchor, 32+ characters";

struct Env {
    db: TestDb,
    master: String,
    dir: PathBuf,
}

impl Env {
    async fn new(name: &str) -> Self {
        let db = TestDb::new().await;
        let dir = std::env::temp_dir().join(format!("{}-{name}", db.name));
        std::fs::create_dir_all(&dir).unwrap();
        Env {
            db,
            master: MasterKey::generate_hex().to_string(),
            dir,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trx-energy"));
        cmd.env("DATABASE_URL", self.db.url())
            .env("TRX_MASTER_KEY", &self.master)
            .env("TRX_JWT_SECRET", JWT_SECRET)
            .env("TRX_DATA_DIR", &self.dir)
            .env("TRX_DATABASE_POOL_SIZE", "4")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str], outputs: &mut Vec<String>) -> Output {
        let out = self.command().args(args).output().unwrap();
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `trx-energy serve`, killed when dropped; its log is read at the end.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env) -> Server {
    let log = env.file("serve.log");
    let mut child = env
        .command()
        .arg("serve")
        .env("TRX_HTTP_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Read standard output to its end (a closed pipe would fail the server's next line).
    let stdout = child.stdout.take().unwrap();
    let (found, url) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("HTTP API at ") {
                let _ = found.send(rest.trim().trim_end_matches("/v1").to_string());
            }
        }
    });
    let url = url.recv_timeout(std::time::Duration::from_secs(60)).ok();
    Server {
        child,
        url: url.unwrap_or_else(|| {
            panic!(
                "serve printed no URL: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        }),
        log,
    }
}

async fn get(url: &str, token: &str, outputs: &mut Vec<String>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    outputs.push(text.clone());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first ```python block after `<!-- verify_export.py -->` in docs/audit.md.
fn documented_script() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/audit.md"))
            .unwrap();
    let after = doc
        .split("<!-- verify_export.py -->")
        .nth(1)
        .expect("docs/audit.md marks its script");
    let start = after.find("```python\n").unwrap() + "```python\n".len();
    after[start..start + after[start..].find("```").unwrap()].to_string()
}

/// Whether `python3` with the `cryptography` package is here (the script needs it); says so
/// when it is not.
fn python_with_cryptography() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("python3 with `cryptography` is not installed: the documented script is not run");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_verifies_the_chain_from_the_api_alone_and_tampering_is_named() {
    let env = Env::new("audit-api").await;
    let mut outputs: Vec<String> = Vec::new();
    let mut conn = env.db.connect().await;
    insert_commits(&mut conn, &simulate(&Ctx::new("anchor", 4, 1), 17, 12))
        .await
        .unwrap();
    // `audit verify` numbers what is not yet numbered (no sequencer runs here).
    let verified = env.run(&["audit", "verify"], &mut outputs);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert!(n > 20);
    assert!(stdout(&verified).starts_with(&format!("ok {n} events\nno signed head yet")));

    let server = serve(&env);
    let issued = env.run(
        &[
            "token",
            "issue",
            "--role",
            "auditor",
            "--subject",
            "the-auditor",
            "--ttl",
            "1h",
        ],
        &mut outputs,
    );
    assert!(issued.status.success(), "{issued:?}");
    let token = stdout(&issued).trim().to_string();
    let key_out = env.run(&["keys", "audit-key"], &mut outputs);
    let public_key = stdout(&key_out)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(public_key.len(), 64, "{key_out:?}");

    // The current head, signed and stored; the pages carry what the hash covers.
    let (status, head) = get(
        &format!("{}/v1/audit/head", server.url),
        &token,
        &mut outputs,
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(head["head"]["to"], n);
    assert_eq!(head["head"]["public_key"], public_key.as_str());
    let saved_head = env.file("head.json");
    std::fs::write(&saved_head, head.to_string()).unwrap();
    let (status, page) = get(
        &format!("{}/v1/audit/log?after=0&limit=2", server.url),
        &token,
        &mut outputs,
    )
    .await;
    assert_eq!(status, 200);
    let entry = &page["entries"][1];
    for field in [
        "prev_hash",
        "event_version",
        "recorded_at",
        "metadata",
        "hash",
    ] {
        assert!(!entry[field].is_null(), "{field} in {entry}");
    }
    assert_eq!(entry["prev_hash"], page["entries"][0]["hash"]);
    let (_, heads) = get(
        &format!("{}/v1/audit/heads", server.url),
        &token,
        &mut outputs,
    )
    .await;
    assert_eq!(heads["heads"][0]["head"]["to"], n);

    let verify_api = |extra: &[&str], outputs: &mut Vec<String>| {
        let mut args = vec!["audit", "verify-api", server.url.as_str()];
        args.extend_from_slice(extra);
        let out = env
            .command()
            .args(&args)
            .env("TRX_API_TOKEN", &token)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .unwrap();
        outputs.push(stdout(&out));
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    };
    let ok = verify_api(&["--public-key", &public_key], &mut outputs);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(
        stdout(&ok).starts_with(&format!(
            "ok {n} lines (audit #1..#{n}); 2 signed heads hold"
        )),
        "the stored head and the current one (the same): {}",
        stdout(&ok)
    );
    assert!(stdout(&ok).contains("heads signed by the audit key you gave"));

    // An export ends with its signed head; it verifies offline, and not once cut short.
    let export = env.file("chain.jsonl");
    let exported = env
        .command()
        .args([
            "audit",
            "export",
            "--from",
            "1",
            "--to",
            &n.to_string(),
            "--output",
        ])
        .arg(&export)
        .output()
        .unwrap();
    outputs.push(String::from_utf8_lossy(&exported.stderr).into_owned());
    assert_eq!(exported.status.code(), Some(0), "{exported:?}");
    let text = std::fs::read_to_string(&export).unwrap();
    outputs.push(text.clone());
    let offline = |file: &Path, outputs: &mut Vec<String>| {
        let out = env
            .command()
            .args(["audit", "verify-export", "--public-key", &public_key])
            .arg(file)
            .arg("--head")
            .arg(&saved_head)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .unwrap();
        outputs.push(stdout(&out));
        out
    };
    let out = offline(&export, &mut outputs);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with(&format!(
        "ok {n} lines (audit #1..#{n}); 2 signed heads hold"
    )));
    let mut lines: Vec<&str> = text.lines().collect();
    let last_event = lines.remove(lines.len() - 2);
    let cut = env.file("cut.jsonl");
    std::fs::write(&cut, lines.join("\n")).unwrap();
    let out = offline(&cut, &mut outputs);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("FAILED: truncated: line "),
        "{}",
        stdout(&out)
    );
    assert!(!last_event.is_empty());

    // The documented Python script agrees.
    if python_with_cryptography() {
        let script = env.file("verify_export.py");
        std::fs::write(&script, documented_script()).unwrap();
        for (file, ok) in [(&export, true), (&cut, false)] {
            let out = Command::new("python3")
                .arg(&script)
                .arg(file)
                .arg(&public_key)
                .output()
                .unwrap();
            assert_eq!(out.status.success(), ok, "{file:?}: {out:?}");
            if ok {
                assert!(
                    stdout(&out).starts_with(&format!("ok {n} lines")),
                    "{out:?}"
                );
            }
        }
    }

    // An altered event is named by the pages alone.
    let mut t = tamperer(&env.db).await;
    let (at, id, seq, et): (String, String, i64, String) = sqlx::query_as(
        "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type \
         FROM audit_log a JOIN events e USING (global_position) WHERE a.audit_seq = 7",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE events SET payload = '{\"changed\": true}' \
         WHERE global_position = (SELECT global_position FROM audit_log WHERE audit_seq = 7)",
    )
    .execute(&mut t)
    .await
    .unwrap();
    let failed = verify_api(&["--public-key", &public_key], &mut outputs);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert_eq!(
        stdout(&failed),
        format!(
            "FAILED: altered: audit #7 ({at} {id} #{seq} {et}): the event does not match its hash\n"
        ),
        "{failed:?}"
    );

    // The same event rewritten with the chain recomputed after it: every page holds together,
    // the heads signed before do not, and nothing new is signed over it.
    projections::testing::rewrite_and_recompute(&mut t, 7, r#"{"actor_subject":"mallory"}"#)
        .await
        .unwrap();
    let failed = verify_api(&[], &mut outputs);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        stdout(&failed).starts_with(&format!("FAILED: rewritten: audit #{n} (")),
        "{}",
        stdout(&failed)
    );
    assert!(
        stdout(&failed).contains("the stored head of"),
        "{}",
        stdout(&failed)
    );
    let (status, refused) = get(
        &format!("{}/v1/audit/head", server.url),
        &token,
        &mut outputs,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "chain_disagrees_with_head");
    let failed = env.run(
        &["audit", "verify", "--head", saved_head.to_str().unwrap()],
        &mut outputs,
    );
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        stdout(&failed).starts_with(&format!("FAILED: rewritten: audit #{n} ")),
        "{}",
        stdout(&failed)
    );
    assert!(stdout(&failed).contains(&format!("an event in #1..#{n} was changed")));

    // The audit key's private half is nowhere: not in any output, log line or answer.
    let log = server.log.clone();
    drop(server);
    outputs.push(std::fs::read_to_string(log).unwrap());
    let vault = KeyVault::new(
        env.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&env.master).unwrap()),
    );
    let (seed, created) = vault.audit_key().await.unwrap();
    assert!(!created);
    let events: Vec<String> =
        sqlx::query_scalar("SELECT payload::text || metadata::text FROM events")
            .fetch_all(&env.db.pool)
            .await
            .unwrap();
    outputs.extend(events);
    let all = outputs.join("\n");
    assert!(all.contains(&public_key), "the public half is shown");
    assert!(all.contains("audit key ready"), "the logs were captured");
    assert_eq!(
        engine::testing::find_secret(&all, seed.as_slice()),
        None,
        "the audit key reached an output"
    );
}
