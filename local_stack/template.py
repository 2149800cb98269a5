"""template.yaml as CloudFormation sees it: parsed, and SAM-transformed offline.

Used by `make cfn-lint` (cfn-lint on the transformed JSON is the check that sees circular
dependencies), by the template tests and by the offline deployment into the emulator.

    python -m local_stack.template transform template.yaml [--parameter KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
PLACEHOLDER_CODE_URI = "s3://placeholder/launcher.zip"
DEFAULT_REGION = "us-east-1"


class TemplateError(Exception):
    """The template cannot be parsed or transformed; the message says why."""


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, short tags (`!Ref`, `!Sub` ...) in their long forms.

    SAM CLI's parser: it also keeps dates such as `2012-10-17` as strings, as CloudFormation does.
    """
    text = Path(path).read_text(encoding="utf-8")
    parsed = _plain(yaml_parse(text))
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return parsed


def transform(
    template: Mapping[str, Any],
    *,
    parameter_values: Mapping[str, str] | None = None,
    code_uri: str = PLACEHOLDER_CODE_URI,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """The SAM transform, offline (aws-sam-translator, as CloudFormation runs it).

    Local CodeUri folders become `code_uri` (an S3 URI), as `sam package` would make them.
    `region` stands in for the deployment's region (SAM otherwise asks the boto3 session).
    Raises TemplateError listing SAM's complaints.
    """
    if not code_uri.startswith("s3://"):
        raise TemplateError(f"code_uri must be an s3:// URI, got {code_uri!r}")
    source = copy.deepcopy(dict(template))
    _point_code_uri_at(source, code_uri)
    parameters = dict(parameter_values or {})
    # What samtranslator.translator.transform.transform does, with a session that names the region
    # (that function asks the environment) and no managed-policy lookup (SAM bundles the ARNs it uses).
    to_py27_compatible_template(source, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        transformed = translator.translate(source, parameter_values=parameters, get_managed_policy_map=dict)
    except InvalidDocumentException as error:
        causes = "; ".join(cause.message for cause in error.causes)
        raise TemplateError(f"SAM transform failed: {causes}") from error
    plain: dict[str, Any] = _plain(undo_mark_unicode_str_in_template(transformed))
    return plain


def _point_code_uri_at(template: dict[str, Any], code_uri: str) -> None:
    function_globals = template.get("Globals", {}).get("Function", {})
    if _is_local(function_globals.get("CodeUri")):
        function_globals["CodeUri"] = code_uri
    for resource in template["Resources"].values():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        properties = resource.setdefault("Properties", {})
        if properties.get("PackageType") == "Image":
            continue
        if "InlineCode" not in properties and _is_local(properties.get("CodeUri", ".")):
            properties["CodeUri"] = code_uri


def _is_local(code_uri: object) -> bool:
    return isinstance(code_uri, str) and not code_uri.startswith("s3://")


_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")


def references(value: Any) -> set[str]:
    """Names that `Ref`, `Fn::GetAtt` and `Fn::Sub` inside `value` point at (pseudo parameters excluded).

    Resource and parameter names alike: intersect with the Resources keys to keep only resources.
    """
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                found |= {target} if isinstance(target, str) else references(target)
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                named = {match.split(".", 1)[0] for match in _SUB_VARIABLE.findall(text)}
                found |= (named - set(variables)) | references(variables)
            else:
                found |= references(item)
    return {name for name in found if not name.startswith("AWS::")}


def dependency_graph(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each resource -> the resources it depends on (references and DependsOn): CloudFormation's order."""
    resources: Mapping[str, Any] = template["Resources"]
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        implicit = references({key: value for key, value in resource.items() if key != "DependsOn"})
        graph[name] = (explicit | implicit) & set(resources)
    return graph


def _plain(value: Any) -> Any:
    """Plain dicts and lists (the parsers hand back OrderedDicts and subclasses)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(item) for item in value]
    return value


def _parameter(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.template", description="template.yaml as CloudFormation sees it"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    transform_command = commands.add_parser("transform", help="print the SAM-transformed template as JSON")
    transform_command.add_argument("template", type=Path)
    transform_command.add_argument(
        "--parameter", type=_parameter, action="append", default=[], metavar="KEY=VALUE"
    )
    transform_command.add_argument("--code-uri", default=PLACEHOLDER_CODE_URI)
    transform_command.add_argument("--region", default=DEFAULT_REGION)
    arguments = parser.parse_args(argv)
    try:
        transformed = transform(
            load_template(arguments.template),
            parameter_values=dict(arguments.parameter),
            code_uri=arguments.code_uri,
            region=arguments.region,
        )
    except (OSError, TemplateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    json.dump(transformed, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
