//! The demo sign-in service started for a test, and the token minting tool.

use super::*;

/// The admin key of the sign-in services tests start (`Authorization: Bearer` on its
/// revocation endpoints).
pub const SIGNIN_ADMIN_KEY: &str = "signin-admin-key-for-tests-Qm4vT8xLr2Zp";

/// A running demo sign-in service.
pub struct SignIn {
    child: Child,
    pub port: u16,
    /// Holds `signin.log` (stdout) and `signin.err` (stderr, the service's log).
    pub dir: PathBuf,
}

impl Drop for SignIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The minting tool (`mint-token`, a binary of the core crate).
pub fn mint_token_binary() -> PathBuf {
    file_from_env(
        "TOLLGATE_MINT",
        "target/debug/mint-token",
        "run `make test`, or `cargo build -p tollgate-core --bins`",
    )
}

fn signin_binary() -> PathBuf {
    file_from_env(
        "TOLLGATE_SIGNIN",
        "target/debug/tollgate-signin",
        "run `make test`, or `cargo build -p tollgate-signin`",
    )
}

impl SignIn {
    /// What the service wrote to stderr (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("signin.err")).unwrap_or_default()
    }

    /// The service's process id (the child is the shell that ties it to this process).
    pub fn pid(&self) -> u32 {
        let shell = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        let exe = |pid: u32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .find(|&p| exe(p).is_some() && exe(p) != exe(shell))
            .expect("the service process")
    }

    /// Starts `tollgate-signin` with the demo configuration, signing with `secret`, and
    /// trusting `trusted_host` as a place to send browsers back to.
    pub fn start(secret: &str, trusted_host: &str) -> SignIn {
        let dir = scratch_dir("signin");
        let database = dir.join("signin.db");
        SignIn::start_on(secret, trusted_host, 0, &database)
    }

    /// [`SignIn::start`] listening on `port` (0: any) with its database at `database`: a
    /// restart on the same port and database, or a second instance on the same database.
    pub fn start_on(secret: &str, trusted_host: &str, port: u16, database: &Path) -> SignIn {
        let dir = scratch_dir("signin");
        let log = dir.join("signin.log");
        let errors = dir.join("signin.err");
        let args: Vec<String> = vec![
            "--config".into(),
            manifest_dir()
                .join("demo/signin/signin.json")
                .display()
                .to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--trust".into(),
            trusted_host.into(),
            // Each service its own database (sessions, revocations), unless shared on purpose.
            "--database".into(),
            database.display().to_string(),
        ];
        let mut child = spawn_tied(
            &signin_binary(),
            &args,
            &[
                ("TOLLGATE_SECRET", secret),
                ("TOLLGATE_SIGNIN_ADMIN_KEY", SIGNIN_ADMIN_KEY),
            ],
            &log,
            &errors,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.strip_prefix("listening on http://"))
                .and_then(read_port)
            {
                return SignIn { child, port, dir };
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let errors = std::fs::read_to_string(&errors).unwrap_or_default();
                panic!("tollgate-signin did not start:\n{text}{errors}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
