//! Reconciler: every few minutes, close the loop that events leave open. It checks every open
//! remediation against what "healed" means for it (recording its time to heal, or escalating
//! once when it missed its deadline), sweeps the fleet for what an event should have handled,
//! and reports events waiting in the dead-letter queue. Every finding goes through the same
//! engine (claim, guard, act, record, report) as the event it stands for.

use std::collections::{BTreeSet, HashMap};

use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::instances::AwsInstances;
use medic_aws::adapters::metrics::AwsMetrics;
use medic_aws::adapters::rds::AwsRds;
use medic_aws::adapters::route53::AwsDns;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::adapters::sqs::SqsDeadLetters;
use medic_aws::config::Accounts;
use medic_aws::ports::{
    DbInspector, DbLister, DeadLetterQueue, DnsInspector, FleetInspector, InstanceInspector, LagInspector, Ledger,
    Notifier, PortResult, Remediator, Remediators,
};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig, Members, PerAccount, PortError, Reach};
use medic_core::accounts::AccountRegion;
use medic_core::fleet::GroupHealth;
use medic_core::guard;
use medic_core::rds_rerouter::{Cluster, DbInstance, DnsRecord, RecordLocation, ReplicaFacts};
use medic_core::reconciler::{
    converge, decide_finding, group_short, impaired_members, parse_short_member, parse_tick, reader_replicas,
    reader_weight, replica_to_put_back, replica_to_take_out, short_groups, short_member, stopped_standalone,
    to_observe, Convergence, DeadLetters, Finding, FindingFacts, HealFacts, Tick, SHORT_GROUPS_KEY, SHORT_TOLD,
    USER_STOP,
};
use medic_core::time::EpochSeconds;
use medic_core::watch::{self, Watch, WATCHES_KEY};
use medic_core::{Outcome, Plan, Policy, Status, Trigger};
use serde::Serialize;
use serde_json::Value;

/// Where the dead-letter queue is and how an operator redrives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    pub queue_url: String,
    /// The command the notice tells the operator to run.
    pub redrive_command: String,
}

impl DeadLetterSettings {
    /// `MEDIC_DLQ_URL` (unset: the queue is not watched) and `MEDIC_STACK_NAME` (for the redrive
    /// command; without it the command names the queue).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let queue_url = get("MEDIC_DLQ_URL")?;
        let redrive_command = match get("MEDIC_STACK_NAME") {
            Some(stack) => format!("medic redrive --stack {stack}"),
            None => format!("medic redrive --dlq-url {queue_url}"),
        };
        Some(Self { queue_url, redrive_command })
    }
}

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Reconciler<F, D, Z, M, Q, L, N> {
    /// EC2 and Auto Scaling: the sweep's lists, observation, and the instance remediations.
    pub fleet: F,
    /// RDS and Route 53: the replica sweep, the database remediations' convergence, and the
    /// reader-set changes the sweep makes.
    pub databases: D,
    pub dns: Z,
    /// Replica lag, for a replica the sweep may put back.
    pub metrics: M,
    pub dead_letters: Option<(Q, DeadLetterSettings)>,
    pub ledger: L,
    pub notifier: N,
    pub policy: Policy,
    /// Central mode: the account and region this one sweeps, named in its findings' notices.
    pub at: Option<AccountRegion>,
}

pub type AwsReconciler =
    Reconciler<AwsInstances, AwsRds, AwsDns, AwsMetrics, SqsDeadLetters, DynamoLedger, SnsNotifier>;

impl AwsReconciler {
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        config: MedicConfig,
        dead_letters: Option<DeadLetterSettings>,
    ) -> Self {
        Self::in_account(sdk, sdk, &config, dead_letters, None)
    }

    /// The reconciler of one account and region: its sweep and remediations through `member`,
    /// its ledger (under `at`'s keys in central mode), topic and dead-letter queue through `home`.
    fn in_account(
        member: &aws_config::SdkConfig,
        home: &aws_config::SdkConfig,
        config: &MedicConfig,
        dead_letters: Option<DeadLetterSettings>,
        at: Option<&AccountRegion>,
    ) -> Self {
        Self {
            fleet: AwsInstances::new(aws_sdk_autoscaling::Client::new(member), aws_sdk_ec2::Client::new(member)),
            databases: AwsRds::new(aws_sdk_rds::Client::new(member)),
            dns: AwsDns::new(aws_sdk_route53::Client::new(member)),
            metrics: AwsMetrics::new(aws_sdk_cloudwatch::Client::new(member)),
            dead_letters: dead_letters.map(|settings| {
                (SqsDeadLetters::new(aws_sdk_sqs::Client::new(home), settings.queue_url.clone()), settings)
            }),
            ledger: DynamoLedger::for_function(home, config, at),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(home), config.topic_arn.clone()),
            policy: config.policy.clone(),
            at: at.cloned(),
        }
    }
}

impl PerAccount for AwsReconciler {
    const NAME: &'static str = "reconciler";

    /// Medic's own account's reconciler also watches the dead-letter queue.
    fn build(
        member: &aws_config::SdkConfig,
        home: &aws_config::SdkConfig,
        config: &MedicConfig,
        at: Option<&AccountRegion>,
    ) -> Self {
        let own = match (&config.accounts, at) {
            (Accounts::Central(settings), Some(at)) => at.account == settings.home_account,
            _ => true,
        };
        let dead_letters = own.then(|| DeadLetterSettings::from_lookup(|name| std::env::var(name).ok())).flatten();
        Self::in_account(member, home, config, dead_letters, at)
    }
}

/// One scheduled run: in single-account mode the function's own account; in central mode medic's
/// own and every account of `MEDIC_ACCOUNTS`, in the function's region, one after another, each
/// with its member role (an account whose role cannot be used is skipped with its notice, once a
/// day). An account that fails does not keep the others from their run; the run then fails.
pub async fn reconcile(
    members: &Members<AwsReconciler>,
    event: Value,
    at: impl Into<Invocation>,
) -> Result<Report, HandlerError> {
    let invocation = at.into();
    parse_tick(&event)?; // an event that is no tick is refused for good, before any account
    let targets = members.sweep_targets();
    let alone = targets.len() == 1;
    let mut all = Report::default();
    let mut failed = Vec::new();
    for place in targets {
        let run = match members.reach_at(&event, place.as_ref(), invocation.now).await {
            Ok(Reach::Ready(reconciler)) => reconciler.handle(event.clone(), invocation).await,
            Ok(Reach::Refused(skip)) => {
                all.findings.push(skip);
                continue;
            }
            Err(error) => Err(error),
        };
        match run {
            Ok(report) => all.absorb(report),
            Err(error) if alone => return Err(error),
            Err(error) => failed.push(format!("{}: {error}", describe(place.as_ref()))),
        }
    }
    if failed.is_empty() {
        Ok(all)
    } else {
        Err(PortError::retryable("reconciler", failed.join("; ")).into())
    }
}

fn describe(place: Option<&AccountRegion>) -> String {
    place.map_or_else(|| "medic's account".to_owned(), |at| format!("account {} in {}", at.account, at.region))
}

/// One remediation the reconciler found healed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healed {
    pub function: String,
    pub action: String,
    pub resource: String,
    pub event: String,
    pub seconds: i64,
    /// Central mode: the account it healed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// What one run did, returned to the caller and logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Open remediations checked, and those still within their time.
    pub checked: usize,
    pub waiting: usize,
    pub healed: Vec<Healed>,
    /// Findings (sweep, escalations, dead letters) and what became of each.
    pub findings: Vec<Outcome>,
    /// Findings left for the next run: over `MEDIC_SWEEP_MAX_FINDINGS`, or too close to the
    /// invocation's deadline.
    pub deferred: usize,
    /// Findings that failed (retried by the next run), as "resource: error".
    pub errors: Vec<String>,
}

impl Report {
    /// Adds another account's run to this one.
    fn absorb(&mut self, other: Report) {
        self.checked += other.checked;
        self.waiting += other.waiting;
        self.healed.extend(other.healed);
        self.findings.extend(other.findings);
        self.deferred += other.deferred;
        self.errors.extend(other.errors);
    }
}

/// No finding starts with less time than this left: the next run takes it.
const MIN_TIME_FOR_A_FINDING_MS: i64 = 10_000;

impl<F, D, Z, M, Q, L, N> Reconciler<F, D, Z, M, Q, L, N>
where
    F: FleetInspector + InstanceInspector + Remediator + Sync,
    D: DbInspector + DbLister + Remediator + Sync,
    Z: DnsInspector + Remediator + Sync,
    M: LagInspector + Sync,
    Q: DeadLetterQueue + Sync,
    L: Ledger + Sync,
    N: Notifier + Sync,
{
    /// One run: convergence, sweep, dead letters; then each finding through the engine, at most
    /// `sweep_max_findings` of them. A finding that fails is reported and taken again by the next
    /// run; the run then fails too, so the function's Errors alarm sees it.
    pub async fn handle(&self, event: Value, at: impl Into<Invocation>) -> Result<Report, HandlerError> {
        let invocation = at.into();
        let now = invocation.now;
        let tick = parse_tick(&event)?;
        let mut report = Report::default();
        let (judged, stored) = self.convergence(now).await?;
        report.checked = judged.len();
        let watched_groups: BTreeSet<String> =
            judged.iter().filter_map(|(watch, _)| to_observe(&watch.action).group).collect();
        let mut findings = Vec::new();
        for (watch, convergence) in judged {
            match convergence {
                Convergence::Healed { seconds } => {
                    medic_aws::emf::emit(&medic_aws::emf::time_to_heal_record(
                        &watch.function,
                        watch.action.name(),
                        seconds,
                        now.saturating_mul(1000),
                    ));
                    self.settle(&watch, &stored).await?;
                    report.healed.push(Healed {
                        function: watch.function.clone(),
                        action: watch.action.name().to_owned(),
                        resource: watch.action.resource().to_owned(),
                        event: watch.event.clone(),
                        seconds,
                        account: self.at.as_ref().map(|at| at.account.clone()),
                    });
                }
                Convergence::Waiting { .. } => report.waiting += 1,
                Convergence::Overdue { deadline, seen } => {
                    findings.push((Finding::Unhealed { watch, deadline, seen }, FindingFacts::Nothing));
                }
            }
        }
        // The three sweeps read different services: side by side.
        let (swept, replicas, dead_letters) =
            tokio::join!(self.sweep(now, &watched_groups), self.replica_sweep(now), self.dead_letters(now));
        findings.extend(swept?.into_iter().map(|f| (f, FindingFacts::Nothing)));
        findings.extend(replicas?);
        if let Some(dead_letters) = dead_letters? {
            findings.push((dead_letters, FindingFacts::Nothing));
        }
        self.decide_findings(findings, &tick, &invocation, &stored, &mut report).await;
        tracing::info!(
            checked = report.checked,
            healed = report.healed.len(),
            waiting = report.waiting,
            findings = report.findings.len(),
            deferred = report.deferred,
            errors = report.errors.len(),
            "reconciler run"
        );
        if report.errors.is_empty() {
            Ok(report)
        } else {
            Err(PortError::retryable("reconciler", report.errors.join("; ")).into())
        }
    }

    async fn decide_findings(
        &self,
        findings: Vec<(Finding, FindingFacts)>,
        tick: &Tick,
        invocation: &Invocation,
        stored: &HashMap<String, Vec<String>>,
        report: &mut Report,
    ) {
        // The RDS and Route 53 adapters name the actions they perform; the fleet takes the rest.
        let databases = Remediators(&self.databases, &self.dns);
        let remediator = Remediators(&databases, &self.fleet);
        let engine = Engine {
            function: "reconciler",
            ledger: &self.ledger,
            notifier: &self.notifier,
            remediator: &remediator,
            policy: &self.policy,
            deadline_ms: invocation.deadline_ms,
        };
        let now = invocation.now;
        let mut decided = 0_u32;
        for (finding, facts) in findings {
            let out_of_time = invocation.ms_left().is_some_and(|left| left < MIN_TIME_FOR_A_FINDING_MS);
            if decided >= self.policy.sweep_max_findings || out_of_time {
                report.deferred += 1;
                continue;
            }
            let trigger = Trigger::Reconcile(finding.clone(), self.at.clone());
            let run = engine.run(&trigger, now, || self.observe_and_decide(&finding, &facts, tick, now)).await;
            match run {
                Ok(outcome) => {
                    if outcome.status != Status::Duplicate {
                        decided += 1;
                    }
                    if let Finding::Unhealed { watch, .. } = &finding {
                        if let Err(error) = self.settle_escalated(watch, stored, now).await {
                            report.errors.push(format!("{}: {error}", finding.resource()));
                        }
                    }
                    report.findings.push(outcome);
                }
                Err(error) => report.errors.push(format!("{}: {error}", finding.resource())),
            }
        }
    }

    /// Closes an escalated watch. A group it left short is marked told, so the sweep does not
    /// report the same shortage again while it lasts.
    async fn settle_escalated(
        &self,
        watch: &Watch,
        stored: &HashMap<String, Vec<String>>,
        now: EpochSeconds,
    ) -> PortResult<()> {
        if let Some(group) = to_observe(&watch.action).group {
            for member in self.ledger.set_members(SHORT_GROUPS_KEY).await? {
                if parse_short_member(&member).is_some_and(|(name, _)| name == group) {
                    self.ledger.remove_from_set(SHORT_GROUPS_KEY, &member).await?;
                }
            }
            let told = short_member(&group, SHORT_TOLD);
            self.ledger.add_to_set(SHORT_GROUPS_KEY, &told, now + watch::WATCHES_SECONDS).await?;
        }
        self.settle(watch, stored).await
    }

    /// Every open remediation and how it stands now (read-only), with the stored members of each
    /// watch (by watch id) for settling it.
    pub async fn convergence(
        &self,
        now: EpochSeconds,
    ) -> PortResult<(Vec<(Watch, Convergence)>, HashMap<String, Vec<String>>)> {
        let (watches, stored) = self.open_watches().await?;
        let facts = self.observe_watches(&watches).await?;
        let judged = watches
            .into_iter()
            .map(|watch| {
                let convergence = converge(&watch, &facts.of(&watch), self.policy.launch_margin_seconds, now);
                (watch, convergence)
            })
            .collect();
        Ok((judged, stored))
    }

    /// The decision of a finding: on the instance as observed now, or on what the sweep read
    /// (a replica and its reader set, seconds old).
    async fn observe_and_decide(
        &self,
        finding: &Finding,
        read: &FindingFacts,
        tick: &Tick,
        now: EpochSeconds,
    ) -> PortResult<Plan> {
        let facts = match finding.instance() {
            Some(id) => {
                let mut observed = self.fleet.observe_instance(id).await?;
                if let Finding::Stopped { instance_id, .. } = finding {
                    let mark = self.ledger.cooldown_until(&guard::recovery_mark_key(instance_id), now).await?;
                    observed.stopped_by_medic = mark.is_some();
                }
                FindingFacts::Instance(observed)
            }
            None => match read {
                // The reader set is read again: a finding decided before this one may have
                // changed it (a replica put back lets a broken one be taken out).
                FindingFacts::Replica(facts) => {
                    let mut facts = facts.clone();
                    if let Some((location, _)) = &facts.readers {
                        let records = self.dns.record_sets(location).await?;
                        facts.readers = Some((location.clone(), Ok(records)));
                    }
                    FindingFacts::Replica(facts)
                }
                other => other.clone(),
            },
        };
        let (account, region) = self.at.as_ref().map_or((&tick.account, &tick.region), |at| (&at.account, &at.region));
        Ok(decide_finding(finding, &facts, account, region, &self.policy, now))
    }

    /// Read replicas in the wrong place in their weighted reader set: in it while they cannot
    /// serve, or out of it while available and caught up; those to put back first, so a set is
    /// never emptied for want of a reader that could have come back. One DescribeDBInstances per
    /// 100 instances, one ListResourceRecordSets per reader set, one lag read per replica that is
    /// out and available.
    async fn replica_sweep(&self, now: EpochSeconds) -> PortResult<Vec<(Finding, FindingFacts)>> {
        let dbs = self.databases.db_instances().await?;
        let mut sets: HashMap<(String, String), Vec<DnsRecord>> = HashMap::new();
        let mut findings = Vec::new();
        for (replica, source_tags, location) in reader_replicas(&dbs, &self.policy) {
            let key = (location.zone_id.clone(), location.name.clone());
            if !sets.contains_key(&key) {
                let records = self.dns.record_sets(&location).await?;
                sets.insert(key.clone(), records);
            }
            let records = &sets[&key];
            let Some(weight) = reader_weight(&replica.id, records) else { continue };
            let (finding, lag) = if let Some(finding) = replica_to_take_out(replica, weight, now) {
                (finding, None)
            } else if weight == 0 && replica.status == "available" {
                let lag = self.metrics.replica_lag(&replica.id, false, now).await?;
                let Some(finding) = replica_to_put_back(replica, weight, lag, &self.policy, now) else { continue };
                (finding, lag)
            } else {
                continue;
            };
            let source_status = replica
                .source
                .as_deref()
                .and_then(|source| dbs.iter().find(|db| db.id == source))
                .map(|db| db.status.clone());
            let facts = ReplicaFacts {
                replica: replica.clone(),
                source_tags,
                source_status,
                readers: Some((location, Ok(records.clone()))),
                lag,
            };
            findings.push((finding, FindingFacts::Replica(facts)));
        }
        findings.sort_by_key(|(finding, _)| matches!(finding, Finding::Replica { take_out: true, .. }));
        Ok(findings)
    }

    /// The open watches, one per remediation, and every stored member of each (by watch id), so
    /// settling one removes its duplicates too.
    async fn open_watches(&self) -> PortResult<(Vec<Watch>, HashMap<String, Vec<String>>)> {
        let mut stored: HashMap<String, Vec<String>> = HashMap::new();
        let mut watches = Vec::new();
        for member in self.ledger.set_members(WATCHES_KEY).await? {
            match Watch::from_member(&member) {
                Some(watch) => {
                    stored.entry(watch.id()).or_default().push(member);
                    watches.push(watch);
                }
                None => tracing::warn!(member = %member, "an open watch this version cannot read is left as it is"),
            }
        }
        Ok((watch::distinct(watches), stored))
    }

    /// Closes a watch: it healed, or its escalation went out.
    async fn settle(&self, watch: &Watch, stored: &HashMap<String, Vec<String>>) -> PortResult<()> {
        for member in stored.get(&watch.id()).into_iter().flatten() {
            self.ledger.remove_from_set(WATCHES_KEY, member).await?;
        }
        Ok(())
    }

    /// Everything the open watches need, read once: one DescribeInstances and one
    /// DescribeAutoScalingGroups per 100 groups for all of them, one read per database, cluster
    /// and record.
    async fn observe_watches(&self, watches: &[Watch]) -> PortResult<Observed> {
        let mut wanted = Wanted::default();
        for watch in watches {
            let needs = to_observe(&watch.action);
            wanted.instances.extend(needs.instance);
            wanted.groups.extend(needs.group);
            wanted.dbs.extend(needs.db);
            wanted.clusters.extend(needs.cluster);
            wanted.records.extend(needs.record.map(|r| (r.zone_id, r.name)));
        }
        let instance_ids: Vec<String> = wanted.instances.into_iter().collect();
        let group_names: Vec<String> = wanted.groups.into_iter().collect();
        let mut observed = Observed {
            instances: self.fleet.instances(&instance_ids).await?,
            groups: self.fleet.groups(Some(&group_names)).await?.into_iter().map(|g| (g.name.clone(), g)).collect(),
            ..Observed::default()
        };
        for id in wanted.dbs {
            let found = self.databases.db_instance(&id).await?;
            observed.dbs.insert(id, found);
        }
        for id in wanted.clusters {
            let found = self.databases.db_cluster(&id).await?;
            observed.clusters.insert(id, found);
        }
        for (zone_id, name) in wanted.records {
            let location = RecordLocation { zone_id, name };
            let sets = self.dns.record_sets(&location).await?;
            observed.records.insert((location.zone_id, location.name), sets);
        }
        Ok(observed)
    }

    /// Stopped standalone instances (EC2's stops, and StopInstances calls that carry medic's
    /// recovery mark: a person's stop is never a finding), impaired group members, and groups
    /// short of desired for too long (those with an open remediation of medic's are left to its
    /// convergence check).
    async fn sweep(&self, now: EpochSeconds, watched_groups: &BTreeSet<String>) -> PortResult<Vec<Finding>> {
        let (groups, stopped, impaired) =
            tokio::join!(self.fleet.groups(None), self.fleet.stopped_instances(), self.fleet.impaired_instances());
        let (groups, stopped, impaired): (Vec<GroupHealth>, _, _) = (groups?, stopped?, impaired?);
        let mut findings = Vec::new();
        for finding in stopped_standalone(&stopped, &self.policy) {
            if let Finding::Stopped { instance_id, state_reason, .. } = &finding {
                if state_reason == USER_STOP
                    && self.ledger.cooldown_until(&guard::recovery_mark_key(instance_id), now).await?.is_none()
                {
                    continue;
                }
            }
            findings.push(finding);
        }
        findings.extend(impaired_members(&impaired, &groups, &self.policy));
        findings.extend(self.short_groups(&groups, watched_groups, now).await?);
        Ok(findings)
    }

    /// Short groups past their time. Since when each has been short is kept in one ledger set,
    /// so a steady run reads one item and writes only when a group becomes short or recovers.
    async fn short_groups(
        &self,
        groups: &[GroupHealth],
        watched_groups: &BTreeSet<String>,
        now: EpochSeconds,
    ) -> PortResult<Vec<Finding>> {
        let stored = self.ledger.set_members(SHORT_GROUPS_KEY).await?;
        let mut seen: HashMap<&str, (EpochSeconds, &str)> = HashMap::new();
        for member in &stored {
            if let Some((group, since)) = parse_short_member(member) {
                seen.insert(group, (since, member));
            }
        }
        let short: Vec<&GroupHealth> =
            short_groups(groups, &self.policy).into_iter().filter(|g| !watched_groups.contains(&g.name)).collect();
        let mut findings = Vec::new();
        for group in &short {
            let since = match seen.get(group.name.as_str()) {
                Some((since, _)) => *since,
                None => {
                    let member = short_member(&group.name, now);
                    self.ledger.add_to_set(SHORT_GROUPS_KEY, &member, now + watch::WATCHES_SECONDS).await?;
                    now
                }
            };
            findings.extend(group_short(group, since, &self.policy, now));
        }
        for (group, (_, member)) in seen {
            if !short.iter().any(|g| g.name == group) {
                self.ledger.remove_from_set(SHORT_GROUPS_KEY, member).await?;
            }
        }
        Ok(findings)
    }

    async fn dead_letters(&self, now: EpochSeconds) -> PortResult<Option<Finding>> {
        let Some((queue, settings)) = &self.dead_letters else {
            return Ok(None);
        };
        let (count, oldest) = queue.depth().await?;
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(Finding::DeadLetters(DeadLetters {
            queue: queue_name(&settings.queue_url).to_owned(),
            count,
            oldest_sent_at: oldest.and_then(|letter| letter.sent_at),
            redrive: settings.redrive_command.clone(),
            seen_at: now,
        })))
    }
}

/// The queue's name: the last part of its URL.
fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

#[derive(Default)]
struct Wanted {
    instances: BTreeSet<String>,
    groups: BTreeSet<String>,
    dbs: BTreeSet<String>,
    clusters: BTreeSet<String>,
    records: BTreeSet<(String, String)>,
}

#[derive(Default)]
struct Observed {
    instances: HashMap<String, medic_core::fleet::InstanceFacts>,
    groups: HashMap<String, GroupHealth>,
    dbs: HashMap<String, Option<DbInstance>>,
    clusters: HashMap<String, Option<Cluster>>,
    records: HashMap<(String, String), Vec<DnsRecord>>,
}

impl Observed {
    /// The facts one watch is judged on.
    fn of(&self, watch: &Watch) -> HealFacts {
        let needs = to_observe(&watch.action);
        HealFacts {
            instance: needs.instance.and_then(|id| self.instances.get(&id).cloned()),
            group: needs.group.and_then(|name| self.groups.get(&name).cloned()),
            db: needs.db.and_then(|id| self.dbs.get(&id).cloned().flatten()),
            cluster: needs.cluster.and_then(|id| self.clusters.get(&id).cloned().flatten()),
            records: needs.record.and_then(|r| self.records.get(&(r.zone_id, r.name)).cloned()).unwrap_or_default(),
        }
    }
}
