"""Operations: ``tidings doctor``, health and metrics endpoints, backups that restore.

Everything here reads the other apps (through their models and query functions) and changes
nothing of theirs except through their actions: it is the top layer, beside ``web``.
"""
