"""genjax's library surface for research code: trained runs back from their workdirs.

    config, model, variables = genjax.load(workdir)   # ordinary flax: model.apply(variables, x)
    config, task, state = genjax.api.load_state(workdir)   # the family's functions too

The top of the package: nothing in genjax imports it.
"""

from genjax.run.restore import Trained, load, load_averaged_state, load_state, read_config

__all__ = ['Trained', 'load', 'load_averaged_state', 'load_state', 'read_config']
