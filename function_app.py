"""The Function App (Python v2 programming model): one blueprint per event source, nothing else here.

Kept cheap to import: the blueprints import only azure.functions and the lifecycle's light modules;
heavy SDKs are imported inside the adapter calls that need them."""
import azure.functions as func

from functions.azureml_triggers import bp as azureml_blueprint
from functions.data_triggers import bp as data_blueprint
from functions.monitoring_triggers import bp as monitoring_blueprint
from functions.notify_triggers import bp as notify_blueprint
from functions.promotion_triggers import bp as promotion_blueprint
from functions.rollout_triggers import bp as rollout_blueprint
from functions.training_triggers import bp as training_blueprint
from lifecycle.models_file import check_at_start

check_at_start()     # a wrong models file (MLOPS_CONFIG) stops the app as it loads, naming the file and the key
app = func.FunctionApp()
app.register_functions(data_blueprint)
app.register_functions(training_blueprint)
app.register_functions(azureml_blueprint)
app.register_functions(rollout_blueprint)
app.register_functions(monitoring_blueprint)
app.register_functions(promotion_blueprint)
app.register_functions(notify_blueprint)
