"""The Gradio page of ``r1track app``: layout and events, each event one ``App`` handler."""

from __future__ import annotations

import functools

import gradio as gr

from r1track.app import BASELINES, App, iou_figure
from r1track.datasets.folder import VIDEO_EXTENSIONS
from r1track.errors import R1TrackError


def build_page(app: App) -> gr.Blocks:
    """The page, its events wired to ``app``'s handlers (tracking: one job at a time)."""

    def on_page(handler):
        """R1TrackError -> gr.Error: the message shows on the page, never a traceback."""

        @functools.wraps(handler)  # gradio reads the signature (event data, progress) through it
        def wrapped(*a, **kw):
            try:
                return handler(*a, **kw)
            except R1TrackError as e:
                raise gr.Error(str(e), print_exception=False) from None

        return wrapped

    def cleared(clip, first, message):
        return clip, first, first, None, "", message, None, None, "", None

    @on_page
    def upload(path):
        return cleared(*app.open_video(path))

    @on_page
    def pick(name):
        return cleared(*app.open_sample(name))

    @on_page
    def select(first, corner, evt: gr.SelectData):
        if first is None:
            raise R1TrackError("upload a video or pick a sample first")
        return app.click(first, corner, evt.index)

    def typed(first, box_text):
        return gr.skip() if first is None else app.typed(first, box_text)

    @on_page
    def run(clip, box_text, description, model, crop_size, search_factor, thinking, progress=gr.Progress()):  # noqa: B008 (gradio injects it)
        def on_frame(i, n):
            progress((i, n), desc="tracking", unit="frames")

        out = app.track(clip, box_text, description, model, crop_size, search_factor, thinking, on_frame)
        plot = iou_figure(out.ious) if out.ious is not None else None
        return out.video, out.files, out.summary, plot

    models = list(dict.fromkeys([app.args.model or "nano", "nano", *BASELINES]))
    # uploads and results leave gradio's cache after a day (all of them when the server restarts)
    with gr.Blocks(title="r1track", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(
            "## r1track: track an object in a video\nUpload a video or pick a sample, click two "
            "opposite corners of the target on the first frame (or describe it), then **Track**."
        )
        clip, first, corner = gr.State(None), gr.State(None), gr.State(None)
        with gr.Row():
            with gr.Column():
                upload_in = gr.File(label="video", file_types=list(VIDEO_EXTENSIONS), height=140, elem_id="upload")
                sample_in = gr.Dropdown(list(app.samples), value=None, label="or a synthetic sample", elem_id="sample")
                info = gr.Markdown(elem_id="info")
                frame = gr.Image(
                    label="first frame: click two opposite corners of the target",
                    interactive=False,
                    type="numpy",
                    elem_id="frame",
                )
                box_in = gr.Textbox(label="box x,y,w,h (pixels)", elem_id="box")
                text_in = gr.Textbox(label="or describe the target (models only)", elem_id="description")
                with gr.Accordion("model and options", open=False):
                    model_in = gr.Dropdown(
                        models,
                        value=models[0],
                        allow_custom_value=True,
                        label="model: nano, a checkpoint folder or hub id, or a baseline",
                        elem_id="model",
                    )
                    crop_in = gr.Number(0, label="crop size (px; 0: the model's)", precision=0, minimum=0)
                    search_in = gr.Number(0, label="search factor (crop side / box size; 0: the model's)", minimum=0)
                    thinking_in = gr.Checkbox(False, label="thinking (<think> before the answer)")
                go = gr.Button("Track", variant="primary", elem_id="track")
            with gr.Column():
                video_out = gr.Video(label="tracked", elem_id="tracked", autoplay=True)
                summary_out = gr.Textbox(label="result", elem_id="summary")
                files_out = gr.File(
                    label="download: boxes (x,y,w,h per frame) and video", file_count="multiple", elem_id="downloads"
                )
                plot_out = gr.Plot(label="IoU per frame (samples)", elem_id="plot")
        opened = [clip, frame, first, corner, box_in, info, video_out, files_out, summary_out, plot_out]
        upload_in.upload(upload, upload_in, opened)
        sample_in.input(pick, sample_in, opened)
        frame.select(select, [first, corner], [frame, corner, box_in])
        box_in.input(typed, [first, box_in], frame, trigger_mode="always_last")
        go.click(
            run,
            [clip, box_in, text_in, model_in, crop_in, search_in, thinking_in],
            [video_out, files_out, summary_out, plot_out],
            concurrency_limit=1,
            concurrency_id="tracking",
        )
    return page.queue(default_concurrency_limit=4)
