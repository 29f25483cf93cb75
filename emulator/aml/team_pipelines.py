"""A team's training spec (a command or pipeline job YAML: bring your own training), checked and planned as
the pipeline the Azure adapter submits: our split step, the team's steps in dependency order, our evaluation
step, with each step's inputs bound to the outputs that feed them. A spec outside the contract, or using what
the local stand-in cannot run, is refused (JobError, a 400) by its part, when the job is submitted."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from emulator.azurite import PROJECT_ROOT

COMPONENTS = PROJECT_ROOT / "training" / "components"      # our split and evaluate steps, as Azure runs them
TEAM_STEP = "train"            # the team's job in the wrapped pipeline; a team pipeline's steps are train/<step>
NODE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")        # azure-ai-ml's rule for a pipeline's step names
REFERENCE = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")
BINDING = re.compile(r"^\$\{\{\s*parent\.(?:inputs\.(?P<input>\w+)|jobs\.(?P<job>\w+)\.outputs\.(?P<output>\w+)"
                     r"|outputs\.(?P<parent_output>\w+))\s*\}\}$")
MODEL_OUTPUTS = ("mlflow_model", "uri_folder", "custom_model")


class JobError(ValueError):
    """A job request the service would refuse (400)."""


def spec_path(job: str, given: str) -> Path:
    path = Path(given)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if not path.is_file():
        raise JobError(f"job {job}: the training spec {given} does not exist")
    return path


def wrapped_steps(path: Path, job: dict, components: Path = COMPONENTS) -> list[dict]:
    """The pipeline a training job with a team's spec runs, in the order its steps run: our split step (its
    train_data is the team's `data`, its holdout only ours), the team's steps (a command job is one step,
    `train`; a pipeline's steps are train/<step>), then our evaluation step, whose `output` is the job's.
    A spec outside the contract, or using what the stand-in cannot run, is refused (JobError) by its part."""
    where = str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path)
    spec = _read_yaml(path, where)
    inputs = job["inputs"]
    team, model = _team_steps(path, where, spec, job)
    common = {"target": {"value": inputs["target"]}, "task": {"value": job["task"]}}
    window = ({"window_column": {"value": job["window_column"]}, "window_days": {"value": _literal(job["window_days"])}}
              if job.get("window_column") else {})          # a row window: literals, as the Azure adapter sets them
    split = _our_step(components, "split", {"data": {"job": "data"}, "holdout_files": {"job": "holdout_files"},
                                            **window, **common}, {})
    evaluate = _our_step(components, "evaluate", {
        "model": model, "holdout": {"step": "split", "output": "holdout"},
        "train_data": {"step": "split", "output": "train_data"}, "model_name": {"value": inputs["model_name"]},
        "champion_model": {"job": "champion"}, **common}, {"output": "outputs/output"})
    return [split, *team, evaluate]


def _our_step(components: Path, name: str, inputs: dict[str, dict], outputs: dict[str, str]) -> dict:
    """Our own step, from its component spec (training/components/<name>.yml), as Azure ML runs it."""
    node = _node(components, "our steps", name, {"component": f"file:{name}.yml"})
    bound = {**_defaults(node, set(inputs)), **inputs}
    return _step(name, node, bound, {k: outputs.get(k, f"steps/{name}/{k}") for k in node["outputs"]})


def _team_steps(path: Path, where: str, spec: dict, job: dict) -> tuple[list[dict], dict]:
    """The team's steps in a runnable order, and the binding of the output the evaluation reads as the model."""
    kind = spec.get("type")
    if kind == "command":
        # a command job is a pipeline of one step whose inputs and outputs are the pipeline's
        node = {k: spec[k] for k in ("command", "code") if k in spec}
        node["inputs"] = {n: f"${{{{parent.inputs.{n}}}}}" for n in _mapping(spec, "inputs", where)}
        node["outputs"] = {n: f"${{{{parent.outputs.{n}}}}}" for n in _mapping(spec, "outputs", where)}
        nodes, prefix = {TEAM_STEP: node}, ""
    elif kind == "pipeline":
        nodes, prefix = _mapping(spec, "jobs", where), TEAM_STEP + "/"
        if not nodes:
            raise JobError(f"{where}: a pipeline job needs jobs: (its steps, by name)")
    else:
        raise JobError(f"{where}: type is {kind!r}; a team's training is a command or a pipeline job "
                       "(type: command or type: pipeline)")
    parent = _parent_inputs(where, spec, job)
    declared_outputs = _mapping(spec, "outputs", where)
    if "model" not in declared_outputs:
        raise JobError(f"{where}: the job has no output named model; the contract is an MLflow model output "
                       "`model`, which the chain's evaluation step reads")
    model_type = (declared_outputs["model"] or {}).get("type") if isinstance(declared_outputs["model"], dict) else None
    if model_type not in (None, *MODEL_OUTPUTS):
        raise JobError(f"{where}: output model is of type {model_type}; it must be an MLflow model folder "
                       f"({', '.join(MODEL_OUTPUTS)})")
    read = {}
    for name, given in nodes.items():
        if not isinstance(name, str) or not NODE_NAME.match(name):
            raise JobError(f"{where}: step name {name!r} is not valid: lower-case letters, digits and '_', "
                           "starting with a letter or '_' (Azure ML's rule)")
        read[name] = _node(path.parent, where, name, given)
    steps: dict[str, dict] = {}
    writers: dict[str, tuple[str, str]] = {}
    for name, node in read.items():
        label = f"{where}: step {name}"
        bound = {}
        for key, value in node["given_inputs"].items():
            binding = _bind(label, key, value, parent, read, prefix)
            if binding is not None:
                bound[key] = binding
        bound = {**_defaults(node, set(bound)), **bound}
        for key, value in node["given_outputs"].items():
            target = value.get("path") if isinstance(value, dict) else value
            if target is None:
                continue
            match = BINDING.match(str(target).strip())
            if not match or not match["parent_output"]:
                raise JobError(f"{label}: output {key} is {target!r}; an output binds to the pipeline's outputs "
                               "as ${{parent.outputs.<name>}}, or is left unbound")
            if match["parent_output"] not in declared_outputs:
                raise JobError(f"{label}: output {key} is bound to ${{{{parent.outputs.{match['parent_output']}}}}}, "
                               f"which the job does not declare (its outputs: {', '.join(declared_outputs)})")
            if match["parent_output"] in writers:
                raise JobError(f"{label}: output {key} writes the pipeline's output {match['parent_output']}, "
                               f"which step {writers[match['parent_output']][0]} writes already")
            writers[match["parent_output"]] = (name, key)
        steps[name] = _step(prefix + name, node, bound,
                            {k: f"steps/{prefix}{name}/{k}" for k in node["outputs"]})
    if "model" not in writers:
        raise JobError(f"{where}: no step writes the output model; bind the trained model to it "
                       "(outputs: model: ${{parent.outputs.model}})")
    step, output = writers["model"]
    return _in_order(where, steps, prefix), {"step": prefix + step, "output": output}


def _parent_inputs(where: str, spec: dict, job: dict) -> dict[str, dict | None]:
    """What a binding to ${{parent.inputs.<name>}} reads: `data` is our split's train_data; `target` the model's
    label column; a hyperparameter of the request its value; any other input its value in the spec."""
    declared = _mapping(spec, "inputs", where)
    data = declared.get("data")
    if "data" not in declared:
        raise JobError(f"{where}: the job has no input named data; the contract is a uri_folder input `data`, "
                       "which the chain's split step feeds with the training rows")
    if not isinstance(data, dict) or data.get("type", "uri_folder") != "uri_folder":
        raise JobError(f"{where}: input data must be a uri_folder (type: uri_folder), not {data!r}")
    hyperparameters = job.get("hyperparameters") or {}
    for key in hyperparameters:
        if key not in declared or key == "data":
            raise JobError(f"{where}: hyperparameter {key} is not an input of the job; its inputs are "
                           f"{', '.join(k for k in declared if k != 'data')}")
    bound: dict[str, dict | None] = {"data": {"step": "split", "output": "train_data"}}
    for key, value in declared.items():
        if key == "data":
            continue
        if key in hyperparameters:
            bound[key] = {"value": _literal(hyperparameters[key])}
        elif key == "target":
            bound[key] = {"value": job["inputs"]["target"]}
        elif key == "task":
            bound[key] = {"value": job["task"]}
        elif value is None or isinstance(value, (str, int, float, bool)):
            bound[key] = {"value": _literal(value)} if value is not None else None
        else:
            raise JobError(f"{where}: input {key} is {value!r}; locally a job's inputs are `data` (the chain "
                           "feeds it) and literal values, not data of their own")
    return bound


def _node(base: Path, where: str, name: str, node: Any) -> dict:
    """One step as written: inline (command, code) or a component file, with its declared inputs and outputs."""
    label = f"{where}: step {name}"
    if not isinstance(node, dict):
        raise JobError(f"{label} is not a mapping of its type, command or component, inputs and outputs")
    if node.get("type", "command") != "command":
        raise JobError(f"{label} is a {node['type']} step; the stand-in runs command steps (inline, or "
                       "component: file:...)")
    component = node.get("component")
    declared: dict | None = None
    if component is not None:
        if not (isinstance(component, str) and component.startswith("file:")):
            raise JobError(f"{label}: component {component!r} cannot run locally; name a component file "
                           "(component: file:./train.yml)")
        file = (base / component.removeprefix("file:")).resolve()
        label = f"{label} (component {component.removeprefix('file:')})"
        body = _read_yaml(file, label)
        if body.get("type", "command") != "command":
            raise JobError(f"{label} is a {body['type']} component; the stand-in runs command components")
        command, code, code_base = body.get("command"), body.get("code"), file.parent
        declared = {k: v if isinstance(v, dict) else {} for k, v in _mapping(body, "inputs", label).items()}
        outputs = list(_mapping(body, "outputs", label))
    else:
        command, code, code_base = node.get("command"), node.get("code"), base
        outputs = list(_mapping(node, "outputs", label))
    given_inputs, given_outputs = _mapping(node, "inputs", label), _mapping(node, "outputs", label)
    if declared is not None:
        for key, kind in (("inputs", given_inputs), ("outputs", given_outputs)):
            known = declared if key == "inputs" else outputs
            unknown = [k for k in kind if k not in known]
            if unknown:
                raise JobError(f"{label}: the component has no {key[:-1]} {', '.join(unknown)} "
                               f"(its {key}: {', '.join(known) or 'none'})")
    if not isinstance(command, str) or not command.strip().startswith("python "):
        raise JobError(f"{label}: the stand-in runs commands that start with 'python ', not {command!r}")
    folder = (code_base / str(code)).resolve() if code else code_base
    if not folder.is_dir():
        raise JobError(f"{label}: its code folder {code} does not exist (next to {code_base})")
    has = {"inputs": declared if declared is not None else given_inputs, "outputs": outputs}
    for expression in EXPRESSION.findall(command):
        match = REFERENCE.fullmatch("${{" + expression + "}}")
        if not match:
            raise JobError(f"{label}: the command names ${{{{{expression}}}}}; a command names its own "
                           "${{inputs.<name>}} and ${{outputs.<name>}}")
        if match[2] not in has[match[1]]:
            raise JobError(f"{label}: the command names {match[1]}.{match[2]}, which the step does not have "
                           f"(its {match[1]}: {', '.join(has[match[1]]) or 'none'})")
    return {"command": command, "code": str(folder), "declared": declared, "outputs": outputs,
            "given_inputs": given_inputs, "given_outputs": given_outputs, "label": label}


def _bind(label: str, key: str, value: Any, parent: dict[str, dict | None], nodes: dict[str, dict],
          prefix: str) -> dict | None:
    """A step input as written, as what the stand-in gives it: a value, another step's output or a job input."""
    target = value.get("path") if isinstance(value, dict) else value
    if isinstance(value, dict) and "path" not in value:
        raise JobError(f"{label}: input {key} is {value!r}; give a value or a binding "
                       "(${{parent.inputs.<name>}}, ${{parent.jobs.<step>.outputs.<name>}})")
    if target is None:
        return None
    if not isinstance(target, str) or not EXPRESSION.search(target):
        if isinstance(value, dict):
            raise JobError(f"{label}: input {key} has a path of its own ({target}); locally a step reads the "
                           "job's data (${{parent.inputs.data}}) or another step's output")
        return {"value": _literal(target)}
    match = BINDING.match(target.strip())
    if match and match["input"]:
        if match["input"] not in parent:
            raise JobError(f"{label}: input {key} is bound to {target}, but the job has no input "
                           f"{match['input']} (its inputs: {', '.join(parent)})")
        return parent[match["input"]]
    if match and match["job"]:
        other = nodes.get(match["job"])
        if other is None:
            raise JobError(f"{label}: input {key} is bound to {target}, but the job has no step {match['job']} "
                           f"(its steps: {', '.join(nodes)})")
        if match["output"] not in other["outputs"]:
            raise JobError(f"{label}: input {key} is bound to {target}, but step {match['job']} has no output "
                           f"{match['output']} (its outputs: {', '.join(other['outputs']) or 'none'})")
        return {"step": prefix + match["job"], "output": match["output"]}
    raise JobError(f"{label}: input {key} is bound to {target}, which is not a binding the stand-in knows; "
                   "bind inputs to ${{parent.inputs.<name>}} or ${{parent.jobs.<step>.outputs.<name>}}")


def _defaults(node: dict, given: set[str]) -> dict[str, dict]:
    """A component's inputs the step leaves unbound: their default; an optional one stays unset."""
    found = {}
    for key, declared in (node["declared"] or {}).items():
        if key in given:
            continue
        if declared.get("default") is not None:
            found[key] = {"value": _literal(declared["default"])}
        elif not declared.get("optional"):
            raise JobError(f"{node['label']}: input {key} is required by the component and not given")
    return found


def _step(name: str, node: dict, inputs: dict[str, dict], outputs: dict[str, str]) -> dict:
    return {"name": name, "status": "NotStarted", "command": node["command"], "code": node["code"],
            "inputs": inputs, "outputs": outputs, "started": None, "ended": None}


def _in_order(where: str, steps: dict[str, dict], prefix: str) -> list[dict]:
    """The steps in an order that runs each after the steps whose outputs it reads (as written, where free)."""
    waits = {name: {b["step"].removeprefix(prefix) for b in step["inputs"].values()
                    if "step" in b and b["step"] != "split"} for name, step in steps.items()}
    ordered: list[str] = []
    while len(ordered) < len(steps):
        ready = [n for n in steps if n not in ordered and waits[n] <= set(ordered)]
        if not ready:
            raise JobError(f"{where}: steps {', '.join(n for n in steps if n not in ordered)} wait on each "
                           "other's outputs in a cycle")
        ordered.append(ready[0])
    return [steps[n] for n in ordered]


def _read_yaml(path: Path, label: str) -> dict:
    try:
        body = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise JobError(f"{label}: {path} does not exist") from None
    except (OSError, yaml.YAMLError) as error:
        raise JobError(f"{label}: {path.name} is not readable YAML: {error}") from None
    if not isinstance(body, dict):
        raise JobError(f"{label}: {path.name} is not a YAML mapping")
    return body


def _mapping(body: dict, key: str, label: str) -> dict:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise JobError(f"{label}: {key} must be a mapping of name: value")
    return value


def _literal(value: Any) -> str:
    return str(value)       # as Azure ML renders a literal into a command (a boolean as True / False)
