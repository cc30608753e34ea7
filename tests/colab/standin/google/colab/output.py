"""Stand-in for ``google.colab.output``: the custom widget manager switch, recorded."""
from . import _log

custom_widget_manager_enabled = False
calls = []  # the names of the functions called, in order


def enable_custom_widget_manager():
    """On Colab: turn on the widget manager that third-party widgets need. Here: record the call."""
    global custom_widget_manager_enabled
    custom_widget_manager_enabled = True
    calls.append("enable_custom_widget_manager")
    _log("enable_custom_widget_manager")


def disable_custom_widget_manager():
    global custom_widget_manager_enabled
    custom_widget_manager_enabled = False
    calls.append("disable_custom_widget_manager")
    _log("disable_custom_widget_manager")
