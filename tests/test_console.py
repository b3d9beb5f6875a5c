"""The jobs' console (sas.console.quiet): library noise goes, warnings that say something stay."""

import logging


def test_quiet_drops_the_random_init_line_and_keeps_other_warnings(caplog):
    from sas.console import quiet
    root = logging.getLogger()
    level, filters = root.level, list(root.filters)
    try:
        quiet()
        quiet()                                                          # once per job of a sweep: one filter
        assert len(root.filters) == len(filters) + 1
        with caplog.at_level(logging.WARNING):
            logging.warning("No pretrained weights loaded for model 'tiny-clip'. Model initialized randomly.")
            logging.warning("QuickGELU mismatch between final model config and pretrained config")
            logging.getLogger("pytorch_lightning").info("GPU available: False")
        assert [r.getMessage() for r in caplog.records] == [
            "QuickGELU mismatch between final model config and pretrained config"]
    finally:
        root.filters[:] = filters
        root.setLevel(level)
