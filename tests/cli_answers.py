"""The property every command keeps, shared by the fuzz tests: exit 0, or exit 2 with exactly one line on stderr
(``georecall: error: ...``); never a traceback, never exit 1."""


def one_line_or_success(code, err):
    """Assert the property for one command's exit status and stderr; returns stderr."""
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("georecall: error:"), err
    return err
