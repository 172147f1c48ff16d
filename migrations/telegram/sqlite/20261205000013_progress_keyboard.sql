-- The buttons of a progress message (Telegram's InlineKeyboardMarkup as JSON): an edit
-- without them would take them off the message (the training message carries the menu).
ALTER TABLE tg_progress_messages ADD COLUMN keyboard TEXT;
