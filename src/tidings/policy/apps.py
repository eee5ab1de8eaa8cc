from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "tidings.policy"
    label = "policy"
    verbose_name = "Privacy policy"

    def ready(self) -> None:
        # Load the configured policy now, so a broken file stops start-up with its error instead
        # of surfacing on the first request.  PolicyError names the file, the key and the problem.
        from django.core.signals import setting_changed

        from . import forget_policy, get_policy

        get_policy()
        setting_changed.connect(forget_policy, dispatch_uid="tidings.policy.forget_policy")
