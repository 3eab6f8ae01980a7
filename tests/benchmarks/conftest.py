import pytest

from tests.conftest import WHEEL_DIR


@pytest.fixture(scope="session")
def wheel():
    from benchmarks.emotion_wheel import DEFAULT_WHEEL_DIR, EmotionWheel

    assert DEFAULT_WHEEL_DIR == WHEEL_DIR and (WHEEL_DIR / "LICENSE").is_file(), "the wheel tables ship in the package"
    return EmotionWheel()
