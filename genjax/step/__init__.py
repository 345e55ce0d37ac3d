"""What a step needs, below the families: the train state, optimizers, the parallel
strategies and the generic step features (EMA, gradient accumulation). Nothing here
imports `genjax.tasks`; a family's functions come in as arguments."""
