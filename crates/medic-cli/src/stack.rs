//! medic's resources, from the stack's outputs (CloudFormation DescribeStacks) and the flags.

use medic_aws::PortError;

use crate::Target;

/// What the commands act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub table: Option<String>,
    pub topic_arn: Option<String>,
    pub dlq_url: Option<String>,
    /// medic's functions, from the stack's `*FunctionArn` outputs: `redrive` invokes no other.
    /// Empty without `--stack`.
    pub function_arns: Vec<String>,
}

impl Resources {
    /// The flags, completed from the stack's outputs when a stack is named.
    pub async fn resolve(target: &Target, sdk: &aws_config::SdkConfig) -> Result<Self, PortError> {
        let mut resources = Self {
            table: target.table.clone(),
            topic_arn: target.topic_arn.clone(),
            dlq_url: target.dlq_url.clone(),
            function_arns: Vec::new(),
        };
        let Some(stack) = &target.stack else {
            return Ok(resources);
        };
        let described = aws_sdk_cloudformation::Client::new(sdk)
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| medic_aws::error::classify("cloudformation:DescribeStacks", e))?;
        let outputs = described.stacks().first().map(|s| s.outputs().to_vec()).unwrap_or_default();
        let output = |key: &str| {
            outputs.iter().find(|o| o.output_key() == Some(key)).and_then(|o| o.output_value()).map(str::to_owned)
        };
        resources.table = resources.table.or_else(|| output("LedgerTableName"));
        resources.topic_arn = resources.topic_arn.or_else(|| output("NoticeTopicArn"));
        resources.dlq_url = resources.dlq_url.or_else(|| output("DeadLetterQueueUrl"));
        resources.function_arns = outputs
            .iter()
            .filter(|o| o.output_key().is_some_and(|k| k.ends_with("FunctionArn")))
            .filter_map(|o| o.output_value().map(str::to_owned))
            .collect();
        Ok(resources)
    }

    /// Whether `arn` (with or without a version or alias) is one of medic's functions: always
    /// true when the stack is not known.
    pub fn is_medic_function(&self, arn: &str) -> bool {
        let unqualified = |arn: &str| arn.split(':').take(7).collect::<Vec<_>>().join(":");
        self.function_arns.is_empty() || self.function_arns.iter().any(|known| unqualified(known) == unqualified(arn))
    }

    pub fn table(&self) -> Result<&str, String> {
        self.table.as_deref().ok_or_else(|| "no ledger table: give --stack or --table".to_owned())
    }

    pub fn dlq_url(&self) -> Result<&str, String> {
        self.dlq_url.as_deref().ok_or_else(|| "no dead-letter queue: give --stack or --dlq-url".to_owned())
    }

    /// The notice topic the functions would publish to; `explain` publishes nothing, so any ARN
    /// will do when none is known.
    pub fn topic_arn(&self) -> String {
        self.topic_arn.clone().unwrap_or_else(|| "arn:aws:sns:none:000000000000:not-published".to_owned())
    }
}
