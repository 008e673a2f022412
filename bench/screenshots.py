"""The README's screenshot of the labelling page with the model's suggestion (issue #14), on
the packaged default model and the real BBC News demo data, never a tiny random model.

    python -m bench.screenshots --out docs/labelling-suggestion.png

What it does, all through the app's own services, a real worker and headless Chromium:
1. a fresh data folder; the BBC News demo project (2,127 articles, five topics);
2. a simulated annotator labels 30 articles (6 per topic, drawn with --seed) with their
   gold labels; the prompt is the topic preset ("[{mask}] {text}") with the demo's words;
3. a LiST run (the quick preset's settings with --max-length capping the tokens, 128 by
   default, so that it finishes in minutes on 2 CPU cores) on a real worker, then the background predict run
   that labels the corpus for the labelling page;
4. the labelling page with the "Most uncertain (model)" strategy, screenshotted.
It prints the run's accuracy and times. CPU-heavy: run it alone.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(LIST_DATA_DIR=str(data_dir), LIST_MODEL="default", LIST_DEVICE="cpu",
               LIST_WORKER_POLL_SECONDS="0.5", PYTHONPATH=str(ROOT),
               TOKENIZERS_PARALLELISM="false")
    env.pop("LIST_DATABASE_URL", None)
    return env


def prepare(seed: int, max_length: int) -> tuple[int, int]:
    """The demo project with 30 gold labels, the topic prompt and a queued training run."""
    from app.services import labelling, prompts, training
    from app.services.corpus import create_demo_project
    from db.migrate import upgrade_to_head
    from db.models import Document
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        project, report = create_demo_project(s)
        print(f"demo project: {report.imported:,} articles", flush=True)
        classes = labelling.list_label_classes(s, project.id)
        by_name = {c.name: c for c in classes}
        docs = s.query(Document).filter_by(project_id=project.id).order_by(Document.id).all()
        rng = random.Random(seed)
        for name, cls in by_name.items():
            pool = [d for d in docs if d.gold_label == name]
            for doc in rng.sample(pool, 6):  # the annotator gives the gold label
                labelling.set_label(s, project.id, doc.id, cls.id)
        preset = prompts.presets()["topic"]
        config = prompts.save_prompt_config(
            s, project.id, template=preset.template,
            verbalizer={c.name: c.verbalizer_word for c in classes}, model="default",
            note="topic preset, the demo's label words")
        run = training.start_training(
            s, project.id, config.id, preset="custom",
            list_config=training.build_list_config("custom", {"max_length": max_length}))
        return project.id, run.id


def wait_for(run_id: int, what: str, timeout: float) -> None:
    from db.models import FINISHED_STATUSES, SUCCEEDED, Run
    from db.session import get_session

    start, last = time.time(), None
    while time.time() - start < timeout:
        with get_session() as s:
            run = s.get(Run, run_id)
            state = (run.status, run.phase, round(float(run.progress or 0), 2))
            if state != last:
                print(f"  {what}: {run.status} {run.phase or ''} {100 * state[2]:.0f} % "
                      f"({time.time() - start:.0f} s)", flush=True)
                last = state
            if run.status in FINISHED_STATUSES:
                if run.status != SUCCEEDED:
                    raise SystemExit(f"{what} {run.status}: {run.error}")
                return
        time.sleep(5)
    raise SystemExit(f"{what} did not finish in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "labelling-suggestion.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--timeout", type=float, default=3600)
    args = p.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="list-screenshot-"))
    env = _env(data_dir)
    os.environ.update({k: env[k] for k in ("LIST_DATA_DIR", "LIST_MODEL", "LIST_DEVICE")})
    os.environ.pop("LIST_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    from app.services import runs as run_service
    from app.services import suggestions
    from db.session import get_session
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, open_page, stop, streamlit_app

    project_id, run_id = prepare(args.seed, args.max_length)
    t0 = time.time()
    with open(data_dir / "worker.log", "w") as wlog:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT)
        try:
            wait_for(run_id, "training", args.timeout)
            train_s = time.time() - t0
            with get_session() as s:
                metrics = run_service.round_metrics(s, run_id)
                _, predict = suggestions.ensure_predictions(s, project_id)
            kept = [m for m in metrics if m["accuracy"] is not None]
            print(f"training: {train_s / 60:.1f} min; accuracy per round "
                  f"{[round(100 * m['accuracy'], 1) for m in kept]} "
                  f"(n = {(kept[-1]['details'] or {}).get('n') if kept else '-'})", flush=True)
            wait_for(predict.id, "predict", args.timeout)
            shoot(env, data_dir, project_id, args.out, CHROMIUM, CHROMIUM_ARGS, open_page,
                  streamlit_app)
        finally:
            stop(worker)
    print(f"wrote {args.out} (data folder {data_dir})")


def shoot(env, data_dir, project_id, out, chromium, chromium_args, open_page, streamlit_app):
    from playwright.sync_api import expect, sync_playwright

    def settle(page) -> None:
        page.wait_for_timeout(300)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")

    with streamlit_app(env, data_dir / "app.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args)
        # Streamlit scrolls inside its main block, not the window: a tall viewport holds the
        # whole article, and the shot is cut just below the model's guess.
        page = open_page(browser, {"width": 1400, "height": 3000}, default_seconds=120)
        page.goto(f"{url}/?project={project_id}")  # as a user arrives, then the sidebar
        settle(page)
        page.get_by_role("link", name="Labelling").click()
        settle(page)
        page.locator(".st-key-lab_strategy").get_by_text("Most uncertain (model)").click()
        settle(page)
        guess = page.get_by_text("Model's guess (Run #", exact=False)
        expect(guess).to_be_visible()
        page.wait_for_timeout(1000)
        box = page.locator(".st-key-lab_accept").bounding_box()  # the accept button's row
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1400,
                                             "height": min(3000, box["y"] + box["height"] + 60)})
        browser.close()


if __name__ == "__main__":
    main()
