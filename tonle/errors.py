"""The small family of errors Tonle raises; each says what went wrong and what to do."""


class TonleError(Exception):
    """Base of every error Tonle raises on purpose."""


class ConfigError(TonleError):
    """A setting or configuration file is missing or wrong."""


class TopicError(TonleError):
    """A topic does not follow the contract."""


class PayloadError(TonleError):
    """A message payload does not follow the contract; the message names what is wrong."""


class StoreError(TonleError):
    """The database could not be reached or refused a statement."""


class BrokerError(TonleError):
    """The MQTT broker could not be reached or refused us."""
