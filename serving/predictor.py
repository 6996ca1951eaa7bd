"""Predictor: one frozen backbone loaded once, any number of trained checkpoints attached by name, raw examples of
all of them labelled in mixed batches.

    from serving import Predictor
    predictor = Predictor("path/to/backbone")
    predictor.attach("rte", "runs/rte/best_model")
    predictor.attach("ner", "runs/conll03/best_model")
    predictor.predict([{"premise": "...", "hypothesis": "..."}, {"tokens": ["EU", "rejects", "..."]}],
                      adapters=["rte", "ner"])
    # -> [{"prediction": "entailment", "scores": {...}}, {"prediction": ["B-ORG", "O", ...], "scores": [...]}]

A checkpoint is a best_model/ folder of run.py with --prefix or --prompt. Its meta record (model/checkpoint.py) says
the task, label names, method and preprocessing arguments; each record is read and preprocessed by its task's own code
(Task.examples_from_records, Task.preprocess) and post-processed by it (Task.predictions_to_records).
Features of all adapters are sorted by length and batched together: one batch mixes adapters
(model/multi_adapter.py), so K adapters cost one backbone's memory and one backbone's passes.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from types import SimpleNamespace

import torch
from safetensors.torch import load_file
from transformers import AutoConfig

from model.backbones import get_backbone
from model.checkpoint import read_meta
from model.config import MethodConfig, PTuningError
from model.multi_adapter import MultiAdapterModel, build_on
from model.utils import load_backbone
from serving import outputs
from tasks import get_task
from tasks.task_type import TaskType

SIZE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads")
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclasses.dataclass
class Adapter:
    name: str
    index: int  # in the MultiAdapterModel
    task: object  # tasks.Task, bound to its family arguments
    data_args: SimpleNamespace  # the preprocessing arguments it was trained with
    tokenizer: object
    path: str


class Predictor:
    def __init__(self, model_name_or_path: str, device: str | None = None, attn_implementation: str = "sdpa"):
        self.path = model_name_or_path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            config = AutoConfig.from_pretrained(model_name_or_path)
        except OSError as err:
            raise PTuningError(
                f"cannot load a model config from {model_name_or_path!r}: give the local backbone directory the "
                f"checkpoints were trained on. ({str(err).splitlines()[0]})"
            ) from None
        quirks = get_backbone(config)
        kwargs = {"add_pooling_layer": True} if quirks.pooler == "backbone" else {}
        self.attn_implementation = attn_implementation if quirks.attention == "interface" else "eager"
        backbone = load_backbone(
            model_name_or_path, config=config, attn_implementation=self.attn_implementation, **kwargs
        )
        self.model = MultiAdapterModel(backbone.to(self.device).eval())
        self.adapters: dict[str, Adapter] = {}
        self._tokenizers: dict[tuple, object] = {}

    # -- attaching checkpoints -------------------------------------------------------------------------------------
    def attach(self, name: str, checkpoint_dir: str) -> Adapter:
        """Load the trained prefix/prompt + head of `checkpoint_dir` (a run.py best_model/ folder) as `name`."""
        if name in self.adapters:
            raise PTuningError(f"adapter name {name!r} is used twice: give each checkpoint its own name.")
        best = os.path.join(checkpoint_dir, "best_model")
        if not os.path.isfile(os.path.join(checkpoint_dir, "model.safetensors")) and os.path.isdir(best):
            checkpoint_dir = best  # a run folder: its best dev epoch
        meta = read_meta(checkpoint_dir)
        config = self.model.config
        sizes = [
            f"{k} {meta.get(k)!r} vs {getattr(config, k)!r}"
            for k in SIZE_KEYS
            if meta.get(k) != getattr(config, k)
        ]
        record = meta.get("task") or {}
        if sizes:
            raise PTuningError(
                f"adapter {name!r} ({checkpoint_dir}) was trained on another backbone or size ({', '.join(sizes)}; "
                f"checkpoint vs {self.path}): load the backbone it was trained on"
                + (f" ({record['backbone']})." if record.get("backbone") else ".")
            )
        if meta.get("method") not in ("prefix", "prompt"):
            raise PTuningError(
                f"adapter {name!r} ({checkpoint_dir}) is a fine-tuned model: it does not share a frozen backbone; "
                "use run.py --do_predict --ptuning_checkpoint with it."
            )
        missing = [k for k in ("task", "method_config") if k not in meta]
        if missing:
            raise PTuningError(
                f"adapter {name!r}: {checkpoint_dir} does not record {' and '.join(missing)} (the task family, "
                "dataset, label names, preprocessing arguments and every method flag); it was saved by an older "
                "version. Retrain it with this version, or predict with run.py --do_predict --ptuning_checkpoint."
            )
        task = get_task(record["family"], record["dataset"])
        if task.read_example is None:
            raise PTuningError(f"adapter {name!r} ({task.family} {task.name}): {task.predict_unsupported}")
        if task.label_list and list(task.label_list) != record["labels"]:
            raise PTuningError(
                f"adapter {name!r}: its labels {record['labels']} differ from {task.name}'s {list(task.label_list)}."
            )
        if task.args_class is not None and record.get("task_args") is not None:
            task = task.bind_args([task.args_class(**record["task_args"])])
        fields = {**meta["method_config"], "prefix_layers": tuple(meta["method_config"]["prefix_layers"])}
        method_config = MethodConfig(**{**fields, "attn_implementation": self.attn_implementation})
        num_labels = meta["num_labels"]
        model = build_on(self.model.backbone, method_config, TaskType[meta["task_type"]], num_labels)
        model.load_state_dict(load_file(os.path.join(checkpoint_dir, "model.safetensors")))
        index = self.model.add(name, model.to(self.device))
        data_args = SimpleNamespace(  # run.py records max_seq_length, doc_stride and template_id, resolved
            **record["data_args"],
            pad_to_max_length=False,  # dynamic padding: a mixed batch is padded to its own longest row
        )
        adapter = Adapter(name, index, task, data_args, self._tokenizer(task), checkpoint_dir)
        self.adapters[name] = adapter
        return adapter

    def _tokenizer(self, task):
        from run import load_tokenizer  # the tokenizer exactly as run.py loads it for this task

        key = (task.pretokenized, task.fast_tokenizer)
        if key not in self._tokenizers:
            args = SimpleNamespace(
                tokenizer_name=None,
                model_name_or_path=self.path,
                cache_dir=None,
                model_revision="main",
                use_fast_tokenizer=True,
                trust_remote_code=False,
            )
            self._tokenizers[key] = load_tokenizer(args, task, self.model.config)
        return self._tokenizers[key]

    # -- predicting ------------------------------------------------------------------------------------------------
    def predict(
        self, records: list[dict], adapters, batch_size: int = 64, where=None, progress: bool = False
    ):
        """One {"prediction", "scores"} per record, in input order. `adapters`: one name per record, or one name
        for all. `where`: per record a location for error messages (predict.py passes "file:line")."""
        names = [adapters] * len(records) if isinstance(adapters, str) else list(adapters)
        where = where or [f"record {i}" for i in range(len(records))]
        for name, loc in zip(names, where, strict=True):
            if name not in self.adapters:
                raise PTuningError(
                    f"{loc}: unknown adapter {name!r}; loaded: {', '.join(self.adapters) or 'none'}."
                )
        jobs = {}  # adapter name -> (record positions, examples, row -> record, features)
        for name, adapter in self.adapters.items():
            positions = [i for i, n in enumerate(names) if n == name]
            if positions:
                picked = [records[i] for i in positions], [where[i] for i in positions]
                jobs[name] = (positions, *self._features(adapter, *picked))
        logits = self._run(jobs, batch_size, progress)
        results: list = [None] * len(records)
        for name, (positions, examples, row_record, features) in jobs.items():
            task, adapter = self.adapters[name].task, self.adapters[name]
            rows = task.predictions_to_records(
                outputs.task_predictions(task, logits[name]), features, examples, adapter.data_args
            )
            scores = outputs.row_scores(task, logits[name], features, examples, rows)
            for i, out in zip(
                positions, outputs.per_record(task, rows, scores, row_record, len(positions)), strict=True
            ):
                results[i] = out
        return results

    def _features(self, adapter: Adapter, records, where):
        examples, row_record = adapter.task.examples_from_records(records, where)
        preprocess = partial(
            adapter.task.preprocess, tokenizer=adapter.tokenizer, data_args=adapter.data_args
        )
        features = examples.map(preprocess, batched=True, remove_columns=examples.column_names)
        return examples, row_record, features

    def _run(self, jobs: dict, batch_size: int, progress: bool) -> dict[str, list]:
        """Per adapter, the logits of each of its features (numpy, trimmed to the feature's own length)."""
        from tqdm.auto import tqdm

        units = []  # (adapter name, feature index, its rows (dicts of input lists))
        for name, (_, _, _, features) in jobs.items():
            keys = [k for k in INPUT_KEYS if k in features.column_names]
            choices = self.adapters[name].task.task_type == TaskType.MULTIPLE_CHOICE
            for i, feature in enumerate(features.select_columns(keys)):
                if choices:  # (C, T): one row per choice
                    units.append(
                        (
                            name,
                            i,
                            [{k: feature[k][c] for k in keys} for c in range(len(feature["input_ids"]))],
                        )
                    )
                else:
                    units.append((name, i, [feature]))
        units.sort(key=lambda u: -max(len(r["input_ids"]) for r in u[2]))  # longest first: little padding
        logits = {name: [None] * len(job[3]) for name, job in jobs.items()}
        tokenizer = next(iter(self.adapters.values())).tokenizer
        batches = [units[i : i + batch_size] for i in range(0, len(units), batch_size)]
        with torch.no_grad():
            for batch in tqdm(batches, desc="Predicting", disable=not progress or len(batches) < 2):
                rows = [r for _, _, unit_rows in batch for r in unit_rows]
                padded = tokenizer.pad(rows, return_tensors="pt")
                row_adapter = torch.tensor(
                    [self.adapters[name].index for name, _, unit_rows in batch for _ in unit_rows]
                )
                inputs = {k: v.to(self.device) for k, v in padded.items() if k in INPUT_KEYS}
                scores = self.model(**inputs, row_adapter=row_adapter.to(self.device))
                taken = dict.fromkeys(scores, 0)
                for name, i, unit_rows in batch:
                    a, n = self.adapters[name].index, len(unit_rows)
                    x = scores[a][taken[a] : taken[a] + n].float().cpu().numpy()
                    taken[a] += n
                    length = len(unit_rows[0]["input_ids"])
                    if self.adapters[name].task.task_type == TaskType.MULTIPLE_CHOICE:
                        logits[name][i] = x[:, 0]  # (C,)
                    elif x.ndim == 3:
                        logits[name][i] = x[0, :length]  # (T, labels) or (T, 2)
                    else:
                        logits[name][i] = x[0]  # (labels,)
        return logits
