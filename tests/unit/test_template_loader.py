"""local_stack.template: parsing short tags, the offline SAM transform, the reference graph, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_stack import template as template_module
from local_stack.template import TemplateError, dependency_graph, load_template, references, transform

SMALL_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/app
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          QUEUE_ARN: !GetAtt Queue.Arn
          QUEUE_URL: !Ref Queue
          GREETING: !Sub "${Greeting} from ${AWS::Region}"
          PICKED: !If [Never, !Select [0, [a, b]], !Ref AWS::NoValue]
Conditions:
  Never: !Equals [!Ref Greeting, never]
"""


@pytest.fixture
def small_template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL_TEMPLATE, encoding="utf-8")
    return path


def test_short_tags_become_long_forms_and_dates_stay_text(small_template: Path) -> None:
    parsed = load_template(small_template)
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    variables = parsed["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    assert variables["QUEUE_ARN"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert variables["QUEUE_URL"] == {"Ref": "Queue"}
    assert variables["GREETING"] == {"Fn::Sub": "${Greeting} from ${AWS::Region}"}
    assert variables["PICKED"] == {
        "Fn::If": ["Never", {"Fn::Select": [0, ["a", "b"]]}, {"Ref": "AWS::NoValue"}]
    }
    assert parsed["Conditions"]["Never"] == {"Fn::Equals": [{"Ref": "Greeting"}, "never"]}
    # Plain containers: the parsers' OrderedDicts must not leak out.
    assert type(parsed) is dict and type(parsed["Resources"]) is dict


def test_something_that_is_not_a_template_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-template.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="no Resources"):
        load_template(path)


def test_transform_expands_the_function_with_its_code_at_the_given_s3_uri(small_template: Path) -> None:
    transformed = transform(load_template(small_template), code_uri="s3://artifacts/build/app.zip")
    resources = transformed["Resources"]
    assert "Transform" not in transformed
    assert resources["Function"]["Type"] == "AWS::Lambda::Function"
    assert resources["Function"]["Properties"]["Code"] == {"S3Bucket": "artifacts", "S3Key": "build/app.zip"}
    assert resources["FunctionRole"]["Type"] == "AWS::IAM::Role"
    # The input is left as it was.
    again = load_template(small_template)
    assert again["Resources"]["Function"]["Properties"]["CodeUri"] == "src/app"


def test_transform_refuses_a_local_code_uri(small_template: Path) -> None:
    with pytest.raises(TemplateError, match="s3://"):
        transform(load_template(small_template), code_uri="src/app")


def test_transform_reports_what_sam_rejects(small_template: Path) -> None:
    broken: dict[str, Any] = load_template(small_template)
    broken["Resources"]["Function"]["Properties"]["Events"] = {"Upload": {"Type": "S3", "Properties": {}}}
    with pytest.raises(TemplateError, match=r"SAM transform failed: .*Upload"):
        transform(broken)


def test_references_follow_ref_getatt_and_sub_but_not_pseudo_parameters_or_escapes() -> None:
    value = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": ["Role", "Arn"]},
        "C": {"Fn::GetAtt": "Bucket.Arn"},
        "D": {"Fn::Sub": "${Table.Arn}/${AWS::Region}/${!Literal}/${Local}"},
        "E": {"Fn::Sub": ["${Local}-${Topic}", {"Local": {"Ref": "Key"}}]},
        "F": [{"Ref": "AWS::AccountId"}, "Queue2"],
    }
    assert references(value) == {"Queue", "Role", "Bucket", "Table", "Local", "Topic", "Key"}


def test_dependency_graph_keeps_resources_and_depends_on() -> None:
    graph = dependency_graph(
        {
            "Parameters": {"Name": {"Type": "String"}},
            "Resources": {
                "A": {"Type": "T", "Properties": {"X": {"Ref": "Name"}, "Y": {"Fn::GetAtt": ["B", "Arn"]}}},
                "B": {"Type": "T", "DependsOn": "C"},
                "C": {"Type": "T", "DependsOn": ["A"]},
            },
        }
    )
    assert graph == {"A": {"B"}, "B": {"C"}, "C": {"A"}}


def test_command_line_prints_the_transformed_template(
    small_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert template_module.main(["transform", str(small_template), "--code-uri", "s3://b/k.zip"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == transform(load_template(small_template), code_uri="s3://b/k.zip")


def test_command_line_fails_cleanly_on_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert template_module.main(["transform", str(tmp_path / "absent.yaml")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "absent.yaml" in captured.err
