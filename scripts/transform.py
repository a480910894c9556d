"""Transforms template.yaml (SAM) into plain CloudFormation JSON with aws-sam-translator, offline,
so cfn-lint, the template tests and the event-pattern conformance test see what CloudFormation
would deploy.   python scripts/transform.py [OUT]   (default target/template.transformed.json)"""

import json
import os
import sys
from pathlib import Path

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]


class NoManagedPolicies:
    """medic's template names no AWS managed policies by name, so nothing needs looking up."""

    def load(self):
        return {}


def transformed(template_path: Path = ROOT / "template.yaml") -> dict:
    # The translator needs a region for pseudo parameters; any one gives the same template.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse(template_path.read_text())
    # As after `sam package`: the code is in S3, not in the working tree.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and not str(resource["Properties"].get("CodeUri", "")).startswith("s3://"):
            resource["Properties"]["CodeUri"] = f"s3://medic-artifacts/{name}.zip"
    try:
        return transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as error:
        raise SystemExit("template.yaml does not transform: " + "; ".join(str(e) for e in error.causes))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "template.transformed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(transformed(), indent=2, default=str))
    print(out)


if __name__ == "__main__":
    main()
