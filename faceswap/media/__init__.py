"""Reading and writing media: probing, frame sources, ffmpeg, video writers."""
