"""Read a synthesized CloudFormation template and resolve its intrinsics, as CloudFormation would.

Used by the deployer (deploy.py), which creates each resource from the
template's own properties. Supported: Ref (resources, parameters, pseudo
parameters), Fn::GetAtt, Fn::Join, Fn::Sub (both forms), Fn::Select,
Fn::Split, Fn::If / Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or,
Condition), Fn::Base64, Fn::GetAZs. An unsupported intrinsic raises
``TemplateError`` naming it and where it is.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

NO_VALUE = object()  # AWS::NoValue: the property is removed


class TemplateError(ValueError):
    pass


@dataclass
class CloudAssembly:
    """One stack of a cdk.out directory: its template and where each file asset's source is."""

    directory: Path
    stack_name: str
    template: dict[str, Any]
    # S3 object key (as in the template's Code.S3Key) -> the asset's directory or file in cdk.out
    asset_sources: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path, stack_name: str) -> "CloudAssembly":
        directory = Path(directory)
        template_path = directory / f"{stack_name}.template.json"
        if not template_path.exists():
            raise TemplateError(
                f"{template_path} not found: synthesize first (python -m infra.synth_all, or cdk synth -c env=<env>)"
            )
        template = json.loads(template_path.read_text())
        sources: dict[str, Path] = {}
        assets_path = directory / f"{stack_name}.assets.json"
        if assets_path.exists():
            for asset in json.loads(assets_path.read_text()).get("files", {}).values():
                src = directory / asset["source"]["path"]
                for dest in asset.get("destinations", {}).values():
                    sources[dest["objectKey"]] = src
        # Asset metadata (cdk CLI synth) names the asset directory per resource, too.
        for res in template.get("Resources", {}).values():
            meta = res.get("Metadata") or {}
            code = (res.get("Properties") or {}).get("Code") or {}
            if meta.get("aws:asset:path") and isinstance(code.get("S3Key"), str):
                sources.setdefault(code["S3Key"], directory / meta["aws:asset:path"])
        return cls(directory=directory, stack_name=stack_name, template=template, asset_sources=sources)


class Resolver:
    """Resolves intrinsic functions against provisioned resources."""

    def __init__(
        self,
        *,
        stack_name: str,
        account_id: str,
        region: str,
        parameters: dict[str, Any],
        conditions: dict[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ):
        self.pseudo = {
            "AWS::AccountId": account_id,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self.parameters = parameters
        self._conditions_src = conditions
        self._conditions: dict[str, bool] = {}
        self._ref = ref
        self._get_att = get_att

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._conditions_src:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._conditions_src[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._ref(name)

    def resolve(self, value: Any, where: str = "") -> Any:
        if isinstance(value, list):
            out = [self.resolve(v, where) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical, self.resolve(attr, where))
            if key == "Fn::Join":
                sep, items = arg
                return self.resolve(sep, where).join(str(v) for v in self.resolve(items, where))
            if key == "Fn::Sub":
                return self._sub(arg, where)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items, where)[int(self.resolve(index, where))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text, where).split(self.resolve(sep, where))
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no, where)
            if key == "Fn::Equals":
                a, b = arg
                return self.resolve(a, where) == self.resolve(b, where)
            if key == "Fn::Not":
                return not self.resolve(arg[0], where)
            if key == "Fn::And":
                return all(self.resolve(a, where) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a, where) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Base64":
                return base64.b64encode(str(self.resolve(arg, where)).encode()).decode()
            if key == "Fn::GetAZs":
                region = self.resolve(arg, where) or self.pseudo["AWS::Region"]
                return [f"{region}a", f"{region}b", f"{region}c"]
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not supported locally (at {where or 'template'})")
        resolved = {}
        for k, v in value.items():
            r = self.resolve(v, f"{where}.{k}" if where else k)
            if r is not NO_VALUE:
                resolved[k] = r
        return resolved

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v, where) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                logical, attr = name.split(".", 1)
                return str(self._get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def references(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".", 1)[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    found.add(name.split(".", 1)[0])
                if isinstance(v, list):
                    found |= references(v[1])
            else:
                found |= references(v)
    return found
