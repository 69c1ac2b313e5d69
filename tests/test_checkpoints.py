"""bctrain.run.checkpoints: keep two, restore the newest readable, read the CheckpointManager format."""
import io
import os

import pytest
import tensorflow as tf

from bctrain.run import checkpoints


def make():
    v = tf.Variable(0.0, name="v")
    return v, tf.train.Checkpoint(v=v)


def test_save_keeps_the_two_newest_and_drops_leftovers_of_later_epochs(tmp_path):
    v, ckpt = make()
    d = str(tmp_path / "ckpt")
    for epoch in (1, 2, 3, 4):
        v.assign(float(epoch))
        checkpoints.save(ckpt, d, epoch)
    assert checkpoints.epochs(d) == [4, 3]
    v.assign(3.5)
    checkpoints.save(ckpt, d, 3)  # an attempt resumed from epoch 2: its epoch 4 is abandoned
    assert checkpoints.epochs(d) == [3]
    assert sorted(os.listdir(d)) == ["ckpt-3.data-00000-of-00001", "ckpt-3.index"]


def test_restore_newest_falls_back_with_a_notice_and_refuses_when_none_is_readable(tmp_path):
    v, ckpt = make()
    d = str(tmp_path / "ckpt")
    assert checkpoints.restore_newest(ckpt, d) is None  # no checkpoint at all
    for epoch in (1, 2):
        v.assign(float(epoch))
        checkpoints.save(ckpt, d, epoch)
    with open(os.path.join(d, "ckpt-2.index"), "wb") as fh:
        fh.write(b"junk")
    err = io.StringIO()
    assert checkpoints.restore_newest(ckpt, d, err) == 1 and float(v) == 1.0
    assert err.getvalue().count("\n") == 1 and "unreadable ckpt-2" in err.getvalue()
    with open(os.path.join(d, "ckpt-1.index"), "wb") as fh:
        fh.write(b"junk")
    with pytest.raises(checkpoints.CheckpointError, match="no readable checkpoint"):
        checkpoints.restore_newest(ckpt, d, io.StringIO())


def test_checkpoints_of_a_checkpoint_manager_are_read(tmp_path):
    v, ckpt = make()
    d = str(tmp_path / "ckpt")
    v.assign(7.0)
    tf.train.CheckpointManager(ckpt, d, max_to_keep=2).save(checkpoint_number=5)
    w, fresh = make()
    assert checkpoints.restore_newest(fresh, d) == 5 and float(w) == 7.0


class FullDisk:
    """A checkpoint whose write fails as TensorFlow's SaveV2 does on a full disk, after making its parts'
    directory (the message is TensorFlow 2.21's)."""

    def write(self, path):
        os.mkdir(path + "_temp")
        raise tf.errors.ResourceExhaustedError(None, None, (
            "{{function_node __wrapped__SaveV2_dtypes_49_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
            f"{path}_temp/part-00000-of-00001.data-00000-of-00001.tempstate17302280565611823264; No space left on "
            "device [Op:SaveV2]"))


def test_a_failed_write_is_one_line_naming_the_checkpoint_and_leaves_no_parts(tmp_path):
    d = str(tmp_path / "ckpt")
    with pytest.raises(OSError) as info:
        checkpoints.save(FullDisk(), d, 3)
    assert str(info.value) == f"{d}/ckpt-3: checkpoint not written (No space left on device)"
    assert os.listdir(d) == []


def test_tensorflow_messages_lose_their_graph_decorations():
    exc = tf.errors.NotFoundError(None, None, "{{function_node __wrapped__RestoreV2}} a/b; No such file\n"
                                  "\t [[{{node RestoreV2}}]] [Op:RestoreV2]")
    assert checkpoints.tf_message(exc) == "a/b; No such file"
    assert checkpoints.tf_message(ValueError("")) == "ValueError"


def test_the_parts_of_killed_writes_are_listed(tmp_path):
    for name in ("ckpt-3_temp", "ckpt-12_temp", "ckpt-2.index", "ckpt_temp", "ckpt-3_temp.x"):
        (tmp_path / name).mkdir()
    assert checkpoints.leftovers(str(tmp_path)) == [str(tmp_path / "ckpt-12_temp"), str(tmp_path / "ckpt-3_temp")]
    assert checkpoints.leftovers(str(tmp_path / "missing")) == []
