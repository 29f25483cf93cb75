"""A small app for the Functions host tests: timers on %TEST_SCHEDULE% that record their ticks."""
import azure.functions as func

app = func.FunctionApp()
ticks: list = []              # TimerRequest objects every_tick got
startup_ticks: list = []


@app.timer_trigger(arg_name="timer", schedule="%TEST_SCHEDULE%")
def every_tick(timer: func.TimerRequest) -> None:
    ticks.append(timer)


@app.timer_trigger(arg_name="timer", schedule="%TEST_SCHEDULE%")
def failing_tick(timer: func.TimerRequest) -> None:
    raise RuntimeError("the tick failed")


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def at_startup(timer: func.TimerRequest) -> None:
    startup_ticks.append(timer)
