import pytest

from tests.conftest import WHEEL_DIR


@pytest.fixture(scope="session")
def wheel():
    if not WHEEL_DIR.is_dir():
        pytest.skip(f"official emotion-wheel tables not found at {WHEEL_DIR} (../shared/data is absent)")
    from benchmarks.emotion_wheel import EmotionWheel

    return EmotionWheel(WHEEL_DIR)
