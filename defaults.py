"""Every default a user can change, in one place: the command line, the application and the library signatures
read them from here, so a default is changed once and means the same thing everywhere.

Constants that are not settings (a metric's definition, a paper's published figure) stay beside the code
that uses them.
"""

from __future__ import annotations

#: the classifier a command uses when none is named: the embedded digits CNN, which needs no download
CLASSIFIER = "digits"
#: the seed of every random draw when none is given
SEED = 0

# --- a domain: at most this many images of each part are held (a seeded subsample beyond)
MAX_TRAIN = 2000
MAX_REAL = 1000

# --- the Inception Score's protocol
#: contiguous splits of the classic IS (the original improved-GAN code's)
SPLITS = 10

# --- the inflate attack on noise
INFLATE_SAMPLES = 1000
INFLATE_STEPS = 50
#: a sample stops once p(target | x) reaches this: with balanced classes IS >= 0.999 K needs
#: E[H(y|x)] <= -ln 0.999 = 1.0e-3 nats, and p = 0.99995 gives H <= 6.6e-4 nats even spread over K - 1 classes
INFLATE_THRESHOLD = 0.99995

# --- KID (torch-fidelity's defaults)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000

# --- the robustness matrix's test
#: the family-wise level of each metric's column (Holm's correction within it)
ALPHA = 0.05
#: the most half-sample draws per cell: ``isgame matrix``, the audit, and the audit's fast profile; None: as many
#: as Holm's correction needs in each column, ceil(tests / alpha)
MATRIX_DRAWS = None
AUDIT_MATRIX_DRAWS = None
AUDIT_FAST_DRAWS = None

# --- probes
#: generated samples per set of a probe when none is given
PROBE_SAMPLES = 1000
