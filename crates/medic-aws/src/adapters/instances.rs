//! EC2 instances and their Auto Scaling groups: read-only observation and the remediations that
//! act on them (replace through Auto Scaling, scale, start, reboot, stop for recovery).

use std::collections::HashMap;

use aws_sdk_autoscaling::types::{AutoScalingGroup, AutoScalingInstanceDetails};
use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_ec2::types::{DeviceType, Filter, Instance, InstanceAutoRecoveryState, SummaryStatus};
use aws_sdk_ec2::Client as Ec2;
use medic_core::alarm_responder::GroupCapacity;
use medic_core::fleet::{GroupHealth, GroupInstance, GroupMember, InstanceFacts, InstanceObservation};
use medic_core::scope::Tags;
use medic_core::Action;

use crate::error::{classify, PortError};
use crate::ports::{FleetInspector, GroupInspector, InstanceInspector, PortResult, Remediator};

#[derive(Debug, Clone)]
pub struct AwsInstances {
    autoscaling: AutoScaling,
    ec2: Ec2,
}

impl AwsInstances {
    pub fn new(autoscaling: AutoScaling, ec2: Ec2) -> Self {
        Self { autoscaling, ec2 }
    }

    /// EC2's view of each instance that exists, in one DescribeInstances.
    async fn instance_facts(&self, instance_ids: &[String]) -> PortResult<HashMap<String, InstanceFacts>> {
        let described = self.ec2.describe_instances().set_instance_ids(Some(instance_ids.to_vec())).send().await;
        let output = match described.map_err(|e| classify("ec2:DescribeInstances", e)) {
            Ok(output) => output,
            Err(error) if error.code.as_deref().is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                // One unknown id fails the whole call: look the others up one by one.
                if instance_ids.len() < 2 {
                    return Ok(HashMap::new());
                }
                let mut found = HashMap::new();
                for id in instance_ids {
                    found.extend(Box::pin(self.instance_facts(std::slice::from_ref(id))).await?);
                }
                return Ok(found);
            }
            Err(error) => return Err(error),
        };
        Ok(output
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|instance| Some((instance.instance_id()?.to_owned(), facts_of(instance))))
            .collect())
    }

    /// Auto Scaling's view of each instance that is in a group, with its group: one
    /// DescribeAutoScalingInstances per 50 instances and one DescribeAutoScalingGroups per 100
    /// groups.
    async fn group_members(&self, instance_ids: &[String]) -> PortResult<HashMap<String, GroupMember>> {
        let mut memberships = Vec::new();
        for chunk in instance_ids.chunks(50) {
            let described = self
                .autoscaling
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| classify("autoscaling:DescribeAutoScalingInstances", e))?;
            memberships.extend(described.auto_scaling_instances().iter().cloned());
        }
        let mut names: Vec<String> =
            memberships.iter().filter_map(|m| m.auto_scaling_group_name().map(str::to_owned)).collect();
        names.sort();
        names.dedup();
        let mut groups = Vec::new();
        for chunk in names.chunks(100) {
            let described = self
                .autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(100)
                .send()
                .await
                .map_err(|e| classify("autoscaling:DescribeAutoScalingGroups", e))?;
            groups.extend(described.auto_scaling_groups().iter().cloned());
        }
        Ok(memberships
            .iter()
            .filter_map(|member| {
                let id = member.instance_id()?;
                let group = groups.iter().find(|g| g.auto_scaling_group_name() == member.auto_scaling_group_name())?;
                Some((id.to_owned(), member_of(id, member, group)))
            })
            .collect())
    }
}

fn tags_of<'a>(tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    tags.filter_map(|(key, value)| Some((key?.to_owned(), value.unwrap_or_default().to_owned()))).collect()
}

fn facts_of(instance: &Instance) -> InstanceFacts {
    InstanceFacts {
        state: instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
        tags: tags_of(instance.tags().iter().map(|t| (t.key(), t.value()))),
        launched_at: instance.launch_time().map(aws_smithy_types::DateTime::secs),
        state_reason: instance.state_reason().and_then(|r| r.code()).map(str::to_owned),
        auto_recovery: instance
            .maintenance_options()
            .and_then(|o| o.auto_recovery())
            .is_some_and(|r| *r == InstanceAutoRecoveryState::Default)
            && instance.root_device_type() == Some(&DeviceType::Ebs)
            && instance.instance_lifecycle().is_none(),
    }
}

fn member_of(instance_id: &str, member: &AutoScalingInstanceDetails, group: &AutoScalingGroup) -> GroupMember {
    let health = group_health(group);
    let out_of_service = health.instances.iter().filter(|i| i.id != instance_id && !i.serving()).count();
    GroupMember {
        group: member.auto_scaling_group_name().unwrap_or_default().to_owned(),
        lifecycle_state: member.lifecycle_state().unwrap_or_default().to_owned(),
        health_status: member.health_status().unwrap_or_default().to_owned(),
        health_check_grace_period_seconds: health.grace_seconds,
        suspended_processes: group
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_owned))
            .collect(),
        group_tags: health.tags,
        desired_capacity: health.desired,
        out_of_service: i32::try_from(out_of_service).unwrap_or(i32::MAX),
    }
}

impl InstanceInspector for AwsInstances {
    async fn observe_instance(&self, instance_id: &str) -> PortResult<InstanceObservation> {
        let mut observed = self.observe_instances(&[instance_id.to_owned()]).await?;
        Ok(observed.pop().map(|(_, observation)| observation).unwrap_or_default())
    }

    async fn observe_instances(&self, instance_ids: &[String]) -> PortResult<Vec<(String, InstanceObservation)>> {
        let (facts, members) = tokio::join!(self.instance_facts(instance_ids), self.group_members(instance_ids));
        let (mut facts, mut members) = (facts?, members?);
        Ok(instance_ids
            .iter()
            .map(|id| {
                let observation = InstanceObservation {
                    instance: facts.remove(id),
                    member: members.remove(id),
                    stopped_by_medic: false,
                };
                (id.clone(), observation)
            })
            .collect())
    }
}

impl GroupInspector for AwsInstances {
    async fn observe_group(&self, group: &str) -> PortResult<Option<(GroupCapacity, Tags)>> {
        // The group and its last scaling activity, side by side: both need only the name.
        let groups = self.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(group).send();
        let activities =
            self.autoscaling.describe_scaling_activities().auto_scaling_group_name(group).max_records(1).send();
        let (groups, activities) = tokio::join!(groups, activities);
        let groups = groups.map_err(|e| classify("autoscaling:DescribeAutoScalingGroups", e))?;
        let Some(found) = groups.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(group))
        else {
            return Ok(None);
        };
        let activities = activities.map_err(|e| classify("autoscaling:DescribeScalingActivities", e))?;
        // An activity still in progress has no end yet: its start counts, so medic waits for it.
        let last_activity_ended_at = activities
            .activities()
            .first()
            .and_then(|a| a.end_time().or(a.start_time()))
            .map(aws_smithy_types::DateTime::secs);
        let capacity = GroupCapacity {
            min: found.min_size().unwrap_or_default(),
            max: found.max_size().unwrap_or_default(),
            desired: found.desired_capacity().unwrap_or_default(),
            default_cooldown_seconds: found.default_cooldown().map_or(0, i64::from),
            last_activity_ended_at,
        };
        let tags = tags_of(found.tags().iter().map(|t| (t.key(), t.value())));
        Ok(Some((capacity, tags)))
    }
}

impl Remediator for AwsInstances {
    /// What AWS shows of a change it may have made: a member marked Unhealthy, or already on its
    /// way out of its group (or out of it); a group at the capacity set; an instance starting or
    /// stopping. A reboot leaves no trace, and a running instance cannot tell whether medic's stop
    /// for recovery happened (the instance healer may have started it again already).
    async fn confirm(&self, action: &Action) -> PortResult<Option<bool>> {
        Ok(match action {
            Action::ReplaceInstance { instance_id, .. } => {
                let members = self.group_members(std::slice::from_ref(instance_id)).await?;
                Some(members.get(instance_id).is_none_or(|member| {
                    member.health_status.eq_ignore_ascii_case("Unhealthy") || member.lifecycle_state != "InService"
                }))
            }
            Action::ScaleGroup { group, to, .. } => {
                self.observe_group(group).await?.map(|(capacity, _)| capacity.desired == *to)
            }
            Action::StartInstance { instance_id, .. } | Action::StopForRecovery { instance_id } => {
                let facts = self.instance_facts(std::slice::from_ref(instance_id)).await?;
                let starting = matches!(action, Action::StartInstance { .. });
                match (facts.get(instance_id).map(|f| f.state.as_str()), starting) {
                    (Some("pending" | "running"), true) | (Some("stopping" | "stopped"), false) => Some(true),
                    (Some("stopped"), true) => Some(false),
                    _ => None,
                }
            }
            _ => None,
        })
    }

    async fn apply(&self, action: &Action) -> PortResult<()> {
        match action {
            Action::ReplaceInstance { instance_id, .. } => {
                self.autoscaling
                    .set_instance_health()
                    .instance_id(instance_id)
                    .health_status("Unhealthy")
                    .should_respect_grace_period(true)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_autoscaling))
                    .send()
                    .await
                    .map_err(|e| classify("autoscaling:SetInstanceHealth", e))?;
            }
            Action::StartInstance { instance_id, .. } => {
                let started = self
                    .ec2
                    .start_instances()
                    .instance_ids(instance_id)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_ec2))
                    .send()
                    .await
                    .map_err(|e| classify("ec2:StartInstances", e))?;
                if started.starting_instances().is_empty() {
                    return Err(PortError::permanent("ec2:StartInstances", format!("{instance_id} was not started")));
                }
            }
            Action::ScaleGroup { group, to, .. } => {
                // Absolute and idempotent; the group's own cooldown was checked when deciding.
                self.autoscaling
                    .set_desired_capacity()
                    .auto_scaling_group_name(group)
                    .desired_capacity(*to)
                    .honor_cooldown(false)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_autoscaling))
                    .send()
                    .await
                    .map_err(|e| classify("autoscaling:SetDesiredCapacity", e))?;
            }
            Action::RebootInstance { instance_id } => {
                self.ec2
                    .reboot_instances()
                    .instance_ids(instance_id)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_ec2))
                    .send()
                    .await
                    .map_err(|e| classify("ec2:RebootInstances", e))?;
            }
            Action::StopForRecovery { instance_id } => {
                self.ec2
                    .stop_instances()
                    .instance_ids(instance_id)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_ec2))
                    .send()
                    .await
                    .map_err(|e| classify("ec2:StopInstances", e))?;
            }
            other => {
                return Err(PortError::permanent(
                    "apply",
                    format!("{} is not an EC2 or Auto Scaling action", other.api_call()),
                ))
            }
        }
        Ok(())
    }
}

fn group_health(group: &AutoScalingGroup) -> GroupHealth {
    GroupHealth {
        name: group.auto_scaling_group_name().unwrap_or_default().to_owned(),
        desired: group.desired_capacity().unwrap_or_default(),
        grace_seconds: group.health_check_grace_period().map_or(0, i64::from),
        tags: tags_of(group.tags().iter().map(|t| (t.key(), t.value()))),
        instances: group
            .instances()
            .iter()
            .map(|i| GroupInstance {
                id: i.instance_id().unwrap_or_default().to_owned(),
                lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_owned(),
            })
            .collect(),
    }
}

/// Which of an instance's status checks are impaired, in words; `None` when none is.
fn impaired_checks(status: &aws_sdk_ec2::types::InstanceStatus) -> Option<String> {
    let impaired = |summary: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
        summary.and_then(|s| s.status()).is_some_and(|s| *s == SummaryStatus::Impaired)
    };
    match (impaired(status.system_status()), impaired(status.instance_status())) {
        (true, true) => Some("system and instance status checks".to_owned()),
        (true, false) => Some("system status check".to_owned()),
        (false, true) => Some("instance status check".to_owned()),
        (false, false) => None,
    }
}

impl FleetInspector for AwsInstances {
    async fn groups(&self, names: Option<&[String]>) -> PortResult<Vec<GroupHealth>> {
        let mut groups = Vec::new();
        let chunks: Vec<Option<Vec<String>>> = match names {
            Some([]) => return Ok(groups),
            Some(names) => names.chunks(100).map(|chunk| Some(chunk.to_vec())).collect(),
            None => vec![None],
        };
        for chunk in chunks {
            let mut token = None;
            loop {
                let page = self
                    .autoscaling
                    .describe_auto_scaling_groups()
                    .set_auto_scaling_group_names(chunk.clone())
                    .max_records(100)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| classify("autoscaling:DescribeAutoScalingGroups", e))?;
                groups.extend(page.auto_scaling_groups().iter().map(group_health));
                token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(groups)
    }

    async fn stopped_instances(&self) -> PortResult<Vec<(String, InstanceFacts)>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ec2
                .describe_instances()
                .filters(Filter::builder().name("instance-state-name").values("stopped").build())
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("ec2:DescribeInstances", e))?;
            found.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|instance| Some((instance.instance_id()?.to_owned(), facts_of(instance)))),
            );
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn impaired_instances(&self) -> PortResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            // Unfiltered (running instances only): every status fits in one page per 1,000.
            let page = self
                .ec2
                .describe_instance_status()
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("ec2:DescribeInstanceStatus", e))?;
            found.extend(
                page.instance_statuses()
                    .iter()
                    .filter_map(|status| Some((status.instance_id()?.to_owned(), impaired_checks(status)?))),
            );
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn instances(&self, instance_ids: &[String]) -> PortResult<HashMap<String, InstanceFacts>> {
        if instance_ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.instance_facts(instance_ids).await
    }
}
