//! EC2 instances and their Auto Scaling groups: read-only observation and the remediations that
//! act on them (replace through Auto Scaling, scale, start, reboot, stop for recovery).

use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_ec2::types::{DeviceType, InstanceAutoRecoveryState};
use aws_sdk_ec2::Client as Ec2;
use medic_core::instance::{GroupMember, InstanceFacts, InstanceObservation};
use medic_core::responder::GroupCapacity;
use medic_core::scope::Tags;
use medic_core::Action;

use crate::error::{classify, PortError};
use crate::ports::{GroupInspector, InstanceInspector, PortResult, Remediator};

#[derive(Debug, Clone)]
pub struct AwsInstances {
    autoscaling: AutoScaling,
    ec2: Ec2,
}

impl AwsInstances {
    pub fn new(autoscaling: AutoScaling, ec2: Ec2) -> Self {
        Self { autoscaling, ec2 }
    }

    async fn instance_facts(&self, instance_id: &str) -> PortResult<Option<InstanceFacts>> {
        let described = self.ec2.describe_instances().instance_ids(instance_id).send().await;
        let output = match described.map_err(|e| classify("ec2:DescribeInstances", e)) {
            Ok(output) => output,
            Err(error) if error.code.as_deref().is_some_and(|c| c.starts_with("InvalidInstanceID")) => return Ok(None),
            Err(error) => return Err(error),
        };
        let instance =
            output.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(instance_id));
        Ok(instance.map(|instance| InstanceFacts {
            state: instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
            tags: instance
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
            launched_at: instance.launch_time().map(aws_smithy_types::DateTime::secs),
            state_reason: instance.state_reason().and_then(|r| r.code()).map(str::to_owned),
            auto_recovery: instance
                .maintenance_options()
                .and_then(|o| o.auto_recovery())
                .is_some_and(|r| *r == InstanceAutoRecoveryState::Default)
                && instance.root_device_type() == Some(&DeviceType::Ebs)
                && instance.instance_lifecycle().is_none(),
        }))
    }

    async fn group_member(&self, instance_id: &str) -> PortResult<Option<GroupMember>> {
        let membership = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DescribeAutoScalingInstances", e))?;
        let Some(member) = membership.auto_scaling_instances().iter().find(|m| m.instance_id() == Some(instance_id))
        else {
            return Ok(None);
        };
        let group_name = member.auto_scaling_group_name().unwrap_or_default().to_owned();
        let groups = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group_name)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DescribeAutoScalingGroups", e))?;
        let Some(group) =
            groups.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(&group_name))
        else {
            return Ok(None);
        };
        let group_tags: Tags = group
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
            .collect();
        let out_of_service = group
            .instances()
            .iter()
            .filter(|i| i.instance_id() != Some(instance_id))
            .filter(|i| {
                i.lifecycle_state().map(|s| s.as_str()) != Some("InService")
                    || i.health_status().is_some_and(|h| h.eq_ignore_ascii_case("Unhealthy"))
            })
            .count();
        Ok(Some(GroupMember {
            desired_capacity: group.desired_capacity().unwrap_or_default(),
            out_of_service: i32::try_from(out_of_service).unwrap_or(i32::MAX),
            group: group_name,
            lifecycle_state: member.lifecycle_state().unwrap_or_default().to_owned(),
            health_status: member.health_status().unwrap_or_default().to_owned(),
            health_check_grace_period_seconds: group.health_check_grace_period().map_or(0, i64::from),
            suspended_processes: group
                .suspended_processes()
                .iter()
                .filter_map(|p| p.process_name().map(str::to_owned))
                .collect(),
            group_tags,
        }))
    }
}

impl InstanceInspector for AwsInstances {
    async fn observe_instance(&self, instance_id: &str) -> PortResult<InstanceObservation> {
        let (instance, member) = tokio::join!(self.instance_facts(instance_id), self.group_member(instance_id));
        Ok(InstanceObservation { instance: instance?, member: member?, stopped_by_medic: false })
    }
}

impl GroupInspector for AwsInstances {
    async fn observe_group(&self, group: &str) -> PortResult<Option<(GroupCapacity, Tags)>> {
        let groups = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DescribeAutoScalingGroups", e))?;
        let Some(found) = groups.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(group))
        else {
            return Ok(None);
        };
        let activities = self
            .autoscaling
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(1)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DescribeScalingActivities", e))?;
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
        let tags = found
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
            .collect();
        Ok(Some((capacity, tags)))
    }
}

impl Remediator for AwsInstances {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        match action {
            Action::ReplaceInstance { instance_id, .. } => {
                self.autoscaling
                    .set_instance_health()
                    .instance_id(instance_id)
                    .health_status("Unhealthy")
                    .should_respect_grace_period(true)
                    .send()
                    .await
                    .map_err(|e| classify("autoscaling:SetInstanceHealth", e))?;
            }
            Action::StartInstance { instance_id, .. } => {
                let started = self
                    .ec2
                    .start_instances()
                    .instance_ids(instance_id)
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
                    .send()
                    .await
                    .map_err(|e| classify("autoscaling:SetDesiredCapacity", e))?;
            }
            Action::RebootInstance { instance_id } => {
                self.ec2
                    .reboot_instances()
                    .instance_ids(instance_id)
                    .send()
                    .await
                    .map_err(|e| classify("ec2:RebootInstances", e))?;
            }
            Action::StopForRecovery { instance_id } => {
                self.ec2
                    .stop_instances()
                    .instance_ids(instance_id)
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
