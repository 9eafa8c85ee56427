//! The campaign's result: one row per fault kind and the totals, printed as a table.

use std::time::Duration;

/// What happened to one kind of fault.
#[derive(Debug, Clone)]
pub struct FaultRow {
    pub kind: String,
    /// How many times it was injected; 0 with a note when the phase did not run.
    pub injected: u32,
    /// Time from injection to the trouble (None: no trouble recorded).
    pub to_trouble: Option<Duration>,
    /// Time from the end of the fault to the trouble clearing (or, where noted, to the
    /// waiting emergency alarming).
    pub to_recovery: Option<Duration>,
    /// Worst time from injecting an emergency in this phase to its alarm.
    pub worst_alarm: Option<Duration>,
    pub note: String,
}

impl FaultRow {
    pub fn not_run(kind: &str, why: &str) -> FaultRow {
        FaultRow {
            kind: kind.into(),
            injected: 0,
            to_trouble: None,
            to_recovery: None,
            worst_alarm: None,
            note: format!("not run: {why}"),
        }
    }
}

/// Totals of the whole campaign.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: Vec<FaultRow>,
    pub kills: u32,
    pub store_opened_after_kill: u32,
    pub committed_checked: usize,
    pub committed_absent: Vec<String>,
    pub injected: usize,
    pub alarmed: usize,
    pub duplicated: Vec<String>,
    pub missing: Vec<String>,
    /// Notifications in the burst, seconds until all were committed (durable), seconds until
    /// every emergency in it was recognised.
    pub burst: Option<(usize, f64, f64)>,
    pub secrets_in_logs: Vec<String>,
    /// What a fault's check after recovery found wrong ("row: what").
    pub check_failures: Vec<String>,
    /// The e-mails of the whole campaign, when the appliance had an e-mail channel.
    pub email: Option<EmailTally>,
}

/// E-mails the campaign's SMTP server received over the whole campaign.
#[derive(Debug, Clone, Default)]
pub struct EmailTally {
    /// Messages received.
    pub messages: usize,
    /// Emergencies injected, how many of them were e-mailed at least once, more than once.
    pub emergencies: usize,
    pub emailed: usize,
    pub twice: usize,
    /// The first few emergencies never e-mailed, with their phase.
    pub not_emailed: Vec<String>,
    /// The outbox at the end, per status ("412 delivered").
    pub outbox: String,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

impl Summary {
    pub fn worst_trouble(&self) -> Option<Duration> {
        self.rows.iter().filter_map(|r| r.to_trouble).max()
    }

    pub fn worst_recovery(&self) -> Option<Duration> {
        self.rows.iter().filter_map(|r| r.to_recovery).max()
    }

    /// The table, as printed at the end of a campaign.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("\n=== Beacon fault campaign ===\n");
        out.push_str(&format!(
            "{:<34} {:>8} {:>12} {:>12} {:>12}  {}\n",
            "fault", "injected", "to trouble", "to recovery", "worst alarm", "note"
        ));
        for row in &self.rows {
            out.push_str(&format!(
                "{:<34} {:>8} {:>12} {:>12} {:>12}  {}\n",
                row.kind,
                row.injected,
                secs(row.to_trouble),
                secs(row.to_recovery),
                secs(row.worst_alarm),
                row.note
            ));
        }
        out.push_str(&format!(
            "kill -9: {} (store opened after {} of them; {} committed emergencies checked, {} committed but absent)\n",
            self.kills,
            self.store_opened_after_kill,
            self.committed_checked,
            self.committed_absent.len()
        ));
        out.push_str(&format!(
            "emergencies: injected {}, alarmed {}, duplicated {}, missing {}\n",
            self.injected,
            self.alarmed,
            self.duplicated.len(),
            self.missing.len()
        ));
        out.push_str(&format!(
            "worst time to trouble: {}; worst time to recovery: {}\n",
            secs(self.worst_trouble()),
            secs(self.worst_recovery())
        ));
        match self.burst {
            Some((n, durable, recognised)) => out.push_str(&format!(
                "burst: {n} notifications durable in {durable:.1} s ({:.0}/s), every emergency in it alarmed after {recognised:.1} s\n",
                n as f64 / durable.max(0.001)
            )),
            None => out.push_str("burst: not run\n"),
        }
        match &self.email {
            Some(e) => out.push_str(&format!(
                "e-mail: {} messages received; {} of {} emergencies e-mailed, {} more than once; outbox at the end: {}\n",
                e.messages, e.emailed, e.emergencies, e.twice, e.outbox
            )),
            None => out.push_str("e-mail: no e-mail channel\n"),
        }
        out.push_str(&format!(
            "secrets found in logs: {}\n",
            self.secrets_in_logs.len()
        ));
        for (what, list) in [
            ("duplicated", &self.duplicated),
            ("missing", &self.missing),
            ("committed but absent", &self.committed_absent),
            ("secret in logs", &self.secrets_in_logs),
            ("check failed", &self.check_failures),
            (
                "not e-mailed",
                &self
                    .email
                    .as_ref()
                    .map(|e| e.not_emailed.clone())
                    .unwrap_or_default(),
            ),
        ] {
            for item in list.iter().take(20) {
                out.push_str(&format!("  {what}: {item}\n"));
            }
        }
        out
    }
}
