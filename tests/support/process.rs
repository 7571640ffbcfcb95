//! Child processes: started tied to the test process (killed with it), or run to the end
//! with an input.

use super::*;

/// Runs `program args` so that it dies with the test process: a shell keeps it as a child
/// and kills it when its standard input (held by this process) closes. Its stdout and stderr
/// go to the two files.
pub(super) fn spawn_tied(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    stdout: &Path,
    stderr: &Path,
) -> Child {
    // Background jobs of a non-interactive shell read /dev/null, so the watchdog reads fd 3.
    let script = r#"exec 3<&0
"$@" </dev/null 3<&- & child=$!
(cat <&3 >/dev/null; kill $child 2>/dev/null) &
exec 3<&-
wait $child"#;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

/// Runs `program` with `args`, `input` on its stdin (written from a thread of its own, so that
/// a large input cannot block against the output), and returns its stdout; panics with its
/// stderr and `hint` when it fails.
pub fn stdout_of<A: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: impl IntoIterator<Item = A>,
    input: &str,
    hint: &str,
) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{program} failed{hint}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
