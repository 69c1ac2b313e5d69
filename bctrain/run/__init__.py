"""Run management: the run directory, its lock, checkpoints, resume, checks and plots, repeats.

    rundir       config check on start and resume, the JSON-lines history, data identity
    runlock      one trainer per run directory (flock)
    checkpoints  tf.train.Checkpoint of the last epochs, written atomically
    leftovers    temporaries of a killed run, removed by the next run of the directory
    resume       continue exactly where the newest readable checkpoint left off, or refuse
    finite       stop on the first non-finite loss or weight, naming the step
    plots        curves.png and the first layer's weight histogram
    epoch_log    an epoch's console line, TensorBoard events and weight statistics
    repeat       one configuration over several seeds, mean ± std (paper §7)
    startup      quiet TensorFlow start-up for the command-line tools
"""
